"""Consistency of the deployment with the code: reads the rendered overlays, the services'
config structs (clap `env = "HOLDFAST_*"` attributes), docs/configuration.md, the ops routes,
the Dockerfiles, Terraform, the deploy bootstrap and the OpenAPI document, and fails on any
disagreement about ports, probe paths, environment variable names, topics/partitions, consumer
groups, sizing, shutdown timing and credentials: each service reaches only its own stores, with
its own user and its own Secret, every password comes from a mounted file (never an
environment value or a ConfigMap), and every connection is TLS (Kafka SASL_SSL with SCRAM,
PostgreSQL sslmode=verify-full with a CA file the pod has, rediss://).

usage: consistency.py RENDERED_DIR   (RENDERED_DIR holds <overlay>.yaml from kustomize build)
"""

import json
import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    # service: (crate dir, listen variable, consumer group or None)
    "command-service": ("command-service", "HOLDFAST_COMMAND_LISTEN"),
    "query-service": ("query-service", "HOLDFAST_QUERY_LISTEN"),
    "projection-workers": ("projection-workers", "HOLDFAST_PROJECTION_LISTEN"),
}
# Production sizing from the brief: (min, max, cpu, memory) per deployment.
PROD_SIZING = {
    "query-service": (100, 200, "4", "8Gi"),
    "command-service": (200, 400, "8", "16Gi"),
    "projection-workers": (100, 300, "4", "8Gi"),
}
# Services that consume the co-partitioned topics: their replicas beyond the partition count idle.
CONSUMERS = {"command-service", "projection-workers"}
# Each service's credentials: the stores it may reach and its own user in each (Kafka SCRAM user,
# PostgreSQL role, Redis ACL user), as the local stack and load-tests/tests/secure.rs prove
# them. A store not listed is one the service must get no settings or credential for.
CREDENTIALS = {
    "command-service": {"kafka": "holdfast-command"},
    "query-service": {"postgres": "holdfast_query", "redis": "holdfast-query"},
    "projection-workers": {"kafka": "holdfast-projection", "postgres": "holdfast_projection", "redis": "holdfast-projection"},
}
# Per store: the variable prefix, the connection variable and the password-file variable.
STORES = {
    "kafka": ("HOLDFAST_KAFKA_", "HOLDFAST_KAFKA_PROPERTIES", "HOLDFAST_KAFKA_SASL_PASSWORD_FILE"),
    "postgres": ("HOLDFAST_POSTGRES_", "HOLDFAST_POSTGRES_URLS", "HOLDFAST_POSTGRES_PASSWORD_FILE"),
    "redis": ("HOLDFAST_REDIS_", "HOLDFAST_REDIS_URLS", "HOLDFAST_REDIS_PASSWORD_FILE"),
}
# A URL's user information with a password in it (scheme://user:password@host).
# What the overlays set, for the checks of Terraform and the bootstrap that follow them.
SEEN: dict[str, set[str]] = {"redis_prefix": set(), "projection_group": set()}
URL_PASSWORD = re.compile(r"://[^/@\s:,]*:[^/@\s,]+@")
ERRORS: list[str] = []


def fail(message: str) -> None:
    ERRORS.append(message)


def read(path: str) -> str:
    return (ROOT / path).read_text()


# ---------------------------------------------------------------- what the code says

def struct_fields(source: str, struct: str) -> str:
    match = re.search(rf"pub struct {struct}\b.*?\n}}", source, re.S)
    if not match:
        sys.exit(f"struct {struct} not found")
    return match.group(0)


def env_attrs(block: str) -> dict[str, str | None]:
    """HOLDFAST_* variable -> its default (None when it has none)."""
    found = {}
    for attr in re.findall(r"#\[arg\((.*?)\)\]", block, re.S):
        env = re.search(r'env\s*=\s*"(HOLDFAST_[A-Z0-9_]+)"', attr)
        if env:
            default = re.search(r'default_value(?:_t)?\s*=\s*"?([^",)]*)"?', attr)
            found[env.group(1)] = default.group(1).strip() if default else None
    return found


def service_variables(crate: str) -> dict[str, str | None]:
    platform = read("platform/src/config.rs")
    source = read(f"{crate}/src/config.rs")
    config = struct_fields(source, "Config")
    variables = env_attrs(config)
    for flattened in re.findall(r"#\[command\(flatten\)\]\s*(?:///[^\n]*\n\s*)*pub \w+: (\w+)", config):
        variables.update(env_attrs(struct_fields(platform, flattened)))
    # `#[command(flatten)]` lines come after the doc comment; catch the other order too.
    for flattened in re.findall(r"#\[command\(flatten\)\]\n\s*pub \w+: (\w+)", config):
        variables.update(env_attrs(struct_fields(platform, flattened)))
    return variables


def documented_variables() -> set[str]:
    return set(re.findall(r"^\| `(HOLDFAST_[A-Z0-9_]+)`", read("docs/configuration.md"), re.M))


def ops_routes(crate: str) -> set[str]:
    """Operational routes a service serves: the shared ones, plus its own ops module if any."""
    sources = [ROOT / "platform/src/ops.rs", ROOT / crate / "src/ops.rs"]
    return {route for path in sources if path.exists() for route in re.findall(r'\.route\("(/[a-z]+)"', path.read_text())}


# ---------------------------------------------------------------- what the manifests say

def load(rendered: Path, overlay: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((rendered / f"{overlay}.yaml").read_text()) if doc]


def by_kind(docs, kind):
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def container_env(deployment: dict, configmaps: dict) -> dict[str, str | None]:
    """Every variable the container receives: value, or None when it comes from a secret/field."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        if name not in configmaps:
            fail(f"{deployment['metadata']['name']}: envFrom ConfigMap {name} does not exist")
            continue
        env.update(configmaps[name].get("data", {}))
    for item in container.get("env", []):
        value_from = item.get("valueFrom", {})
        ref = value_from.get("configMapKeyRef")
        if ref:
            data = configmaps.get(ref["name"], {}).get("data", {})
            if ref["key"] not in data:
                fail(f"{deployment['metadata']['name']}: {item['name']} reads missing key {ref['name']}/{ref['key']}")
            env[item["name"]] = data.get(ref["key"])
        else:
            env[item["name"]] = item.get("value")
    return env


def duration_seconds(raw: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", raw).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[unit]


# ---------------------------------------------------------------- credentials

def own_secret(name: str) -> str:
    """The one Secret a service's pods may read: its own credentials, from External Secrets."""
    return f"{name}-credentials"


def pod_secrets(pod: dict) -> set[str]:
    """Every Secret a pod reads, whichever way (env, envFrom, volumes)."""
    found = set()
    for container in pod.get("initContainers", []) + pod["containers"]:
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                found.add(ref["name"])
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                found.add(source["secretRef"]["name"])
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            found.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                found.add(source["secret"]["name"])
    return found


def secret_files(pod: dict, container: dict, secret: str) -> dict[str, str]:
    """Path -> Secret key of every file the container sees from `secret`."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        sources = [volume] + volume.get("projected", {}).get("sources", [])
        for source in sources:
            ref = source.get("secret")
            if not ref or ref.get("secretName", ref.get("name")) != secret:
                continue
            items = ref.get("items")
            keys = {item["path"]: item["key"] for item in items} if items else None
            prefix = mount["mountPath"].rstrip("/")
            if mount.get("subPath"):
                files[prefix] = mount["subPath"]
            elif keys is not None:
                files.update({f"{prefix}/{path}": key for path, key in keys.items()})
            else:
                files[f"{prefix}/*"] = "*"
    return files


def file_key(files: dict[str, str], path: str | None) -> str | None:
    """The Secret key that `path` shows, if it is one of `files`."""
    if not path:
        return None
    if path in files:
        return files[path]
    directory, _, base = path.rpartition("/")
    return base if files.get(f"{directory}/*") == "*" else None


def image_files(name: str) -> set[str]:
    """Files the service's image puts in place (ADD/COPY destinations of its Dockerfile)."""
    text = read(f"infra/docker/{name}.Dockerfile")
    return {line.split()[-1] for line in text.splitlines() if re.match(r"^(ADD|COPY)\s", line)}


def kafka_properties(raw: str) -> dict[str, str]:
    """librdkafka properties as HOLDFAST_KAFKA_PROPERTIES gives them (`key=value,key=value`)."""
    return dict(item.split("=", 1) for item in raw.split(",") if "=" in item)


def check_credentials(where: str, name: str, pod: dict, env: dict, external_secrets: dict) -> None:
    """Each service reaches only its own stores, as its own user, over TLS, with passwords from
    files of its own Secret."""
    container = pod["containers"][0]
    own = CREDENTIALS[name]
    secret = own_secret(name)
    mounted = {mount["mountPath"].rstrip("/") for mount in container.get("volumeMounts", [])}

    others = pod_secrets(pod) - {secret}
    if others:
        fail(f"{where}: {name} reads Secrets {sorted(others)}; it may read only its own, {secret}")
    for item in container.get("env", []):
        source = item.get("valueFrom", {})
        if "secretKeyRef" in source:
            fail(f"{where}: {name} gets {item['name']} from a Secret as an environment value: passwords come from files")
    if any("secretRef" in source for source in container.get("envFrom", [])):
        fail(f"{where}: {name} takes a Secret as environment (envFrom): passwords come from files")

    files = secret_files(pod, container, secret)
    needed_keys = set()
    # Secrets that are no store's password (the command service's peer key): a file of the
    # service's own Secret too.
    for var in sorted(v for v in env if v.endswith("_SECRET_FILE") and not v.startswith("HOLDFAST_AUTH_")):
        key = file_key(files, env.get(var))
        if key is None:
            fail(f"{where}: {name} {var}={env.get(var)} is not a file of its Secret {secret}")
        else:
            needed_keys.add(key)
    for store, (prefix, connection, password_file) in STORES.items():
        given = sorted(var for var in env if var.startswith(prefix))
        if store not in own:
            if given:
                fail(f"{where}: {name} has no {store} credential but gets {given}")
            continue
        user = own[store]
        key = file_key(files, env.get(password_file))
        if key is None:
            fail(f"{where}: {name} {password_file}={env.get(password_file)} is not a file of its Secret {secret}")
        else:
            needed_keys.add(key)
        value = env.get(connection)
        if not value:
            fail(f"{where}: {name} does not get {connection}")
            continue
        if store == "kafka":
            properties = kafka_properties(value)
            expected = {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": user}
            got = {
                "security.protocol": properties.get("security.protocol"),
                # librdkafka reads `sasl.mechanism` as an alias.
                "sasl.mechanisms": properties.get("sasl.mechanisms", properties.get("sasl.mechanism")),
                "sasl.username": properties.get("sasl.username"),
            }
            if got != expected:
                fail(f"{where}: {name} {connection} must set {expected}, sets {got}")
            if any("password" in k for k in properties):
                fail(f"{where}: {name} {connection} carries a password property; it belongs in {password_file}")
            ca = properties.get("ssl.ca.location")
            if ca and ca not in mounted and not ca.startswith("/etc/ssl/certs/"):
                fail(f"{where}: {name} ssl.ca.location {ca} is neither mounted nor the image's CA bundle")
            continue
        scheme = {"postgres": ("postgres", "postgresql"), "redis": ("rediss",)}[store]
        for url in value.split(","):
            parts = urlsplit(url.strip())
            if parts.scheme not in scheme:
                fail(f"{where}: {name} {connection} uses {parts.scheme}://, must be {' or '.join(s + '://' for s in scheme)}")
            if parts.password is not None:
                fail(f"{where}: {name} {connection} carries a password; it belongs in {password_file}")
            if parts.username != user:
                fail(f"{where}: {name} {connection} signs in as {parts.username}, its own user is {user}")
            if store == "postgres":
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                if query.get("sslmode") != "verify-full":
                    fail(f"{where}: {name} {connection} sslmode={query.get('sslmode')}, must be verify-full")
                root = query.get("sslrootcert")
                if not root or (root not in image_files(name) and root.rsplit("/", 1)[0] not in mounted):
                    fail(f"{where}: {name} {connection} sslrootcert={root} is neither in its image nor mounted")

    external = external_secrets.get(secret)
    if not external:
        fail(f"{where}: {name} has no ExternalSecret {secret}")
        return
    spec = external["spec"]
    if spec.get("target", {}).get("name", secret) != secret or spec.get("dataFrom"):
        fail(f"{where}: ExternalSecret {secret} must fill Secret {secret} from named keys only (no dataFrom)")
    remote = {item["remoteRef"]["key"] for item in spec.get("data", [])}
    if remote != {f"holdfast/{name}"}:
        fail(f"{where}: ExternalSecret {secret} reads {sorted(remote)}; it may read only holdfast/{name}")
    keys = {item["secretKey"] for item in spec.get("data", [])}
    if keys != needed_keys:
        fail(f"{where}: ExternalSecret {secret} holds {sorted(keys)}, {name} needs exactly {sorted(needed_keys)}")


def check_no_plain_passwords(where: str, docs: list[dict]) -> None:
    """No password in a ConfigMap or an environment value, anywhere in the overlay."""
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                # Settings (key=value lists such as librdkafka properties) name no password;
                # scripts may name variables so, but hold no URL with one either.
                script = key.endswith((".sh", ".sql"))
                if URL_PASSWORD.search(str(value)) or (not script and re.search(r"(^|,)[\w.]*password=", str(value), re.I | re.M)):
                    fail(f"{where}: ConfigMap {doc['metadata']['name']} {key} holds a password")
                if "PASSWORD" in key.upper() and not key.upper().endswith("_FILE") and not script:
                    fail(f"{where}: ConfigMap {doc['metadata']['name']} has a password key {key}")
        template = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in template.get("initContainers", []) + template.get("containers", []):
            for item in container.get("env", []):
                value = str(item.get("value", ""))
                if URL_PASSWORD.search(value) or ("PASSWORD" in item["name"].upper() and not item["name"].upper().endswith("_FILE")):
                    fail(f"{where}: {doc['kind']} {doc['metadata']['name']} env {item['name']} carries a password")


def check_overlay(overlay: str, docs: list[dict], code: dict, documented: set[str], partitions_default: int) -> None:
    deployments = by_kind(docs, "Deployment")
    configmaps = by_kind(docs, "ConfigMap")
    services = by_kind(docs, "Service")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    monitors = by_kind(docs, "ServiceMonitor")
    rules = by_kind(docs, "PrometheusRule")
    external_secrets = by_kind(docs, "ExternalSecret")
    where = f"overlay {overlay}"
    check_no_plain_passwords(where, docs)
    for name, (crate, listen_var) in SERVICES.items():
        deployment = deployments.get(name)
        if not deployment:
            fail(f"{where}: Deployment {name} missing")
            continue
        variables = code[name]
        routes = ops_routes(crate)
        port = int(variables[listen_var].rsplit(":", 1)[1])
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = container_env(deployment, configmaps)

        # Environment variables: each is read by this service and documented.
        for var in env:
            if var.startswith("HOLDFAST_") and var not in variables:
                fail(f"{where}: {name} gets {var}, which {crate}/src/config.rs does not read")
            if var.startswith("HOLDFAST_") and var not in documented:
                fail(f"{where}: {name} gets {var}, which docs/configuration.md does not document")
        listen = env.get(listen_var)
        if listen is None or not listen.endswith(f":{port}") or not listen.startswith("0.0.0.0:"):
            fail(f"{where}: {name} must listen on 0.0.0.0:{port} ({listen_var}={listen})")
        # Claims carry the owner's address: by default the listen address, which in a pod is
        # 0.0.0.0 and reaches nobody. It must be set, to a real host and the listen port.
        if "HOLDFAST_ADVERTISED_ADDRESS" in variables:
            advertised = env.get("HOLDFAST_ADVERTISED_ADDRESS")
            if not advertised or not advertised.endswith(f":{port}") or advertised.startswith(("0.0.0.0:", "127.", "localhost:")):
                fail(f"{where}: {name} must advertise a reachable host on port {port} "
                     f"(HOLDFAST_ADVERTISED_ADDRESS={advertised})")
        needed = {"HOLDFAST_PARTITIONS"}
        if "HOLDFAST_KAFKA_BROKERS" in variables:
            needed |= {"HOLDFAST_KAFKA_BROKERS", "HOLDFAST_KAFKA_PROPERTIES", "HOLDFAST_SCHEMA_REGISTRY_URL"}
        if "HOLDFAST_POSTGRES_URLS" in variables:
            needed |= {"HOLDFAST_POSTGRES_URLS", "HOLDFAST_REDIS_URLS"}
        if "HOLDFAST_INSTANCE_ID" in variables:
            needed.add("HOLDFAST_INSTANCE_ID")
        if "HOLDFAST_AUTH_JWKS" in variables:
            # Tokens from the identity provider's keys; the shared HS256 secret is for local
            # development only and must never reach a cluster.
            needed |= {"HOLDFAST_AUTH_JWKS", "HOLDFAST_AUTH_ISSUER", "HOLDFAST_AUTH_AUDIENCE"}
            for var in ("HOLDFAST_AUTH_HS256_SECRET", "HOLDFAST_AUTH_HS256_SECRET_FILE"):
                if var in env:
                    fail(f"{where}: {name} gets {var}: HS256 secrets are for local development only")
        for var in sorted(needed - env.keys()):
            fail(f"{where}: {name} does not get {var}")
        check_credentials(where, name, pod, env, external_secrets)
        if "redis" in CREDENTIALS[name]:
            SEEN["redis_prefix"].add(env.get("HOLDFAST_REDIS_KEY_PREFIX") or variables["HOLDFAST_REDIS_KEY_PREFIX"])
        if "HOLDFAST_PROJECTION_GROUP" in variables:
            SEEN["projection_group"].add(env.get("HOLDFAST_PROJECTION_GROUP") or variables["HOLDFAST_PROJECTION_GROUP"])
        if env.get("HOLDFAST_PARTITIONS") != str(partitions_default):
            fail(f"{where}: {name} HOLDFAST_PARTITIONS={env.get('HOLDFAST_PARTITIONS')}, code default {partitions_default}")

        # Ports and probes.
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        if ports.get("http") != port:
            fail(f"{where}: {name} container port http={ports.get('http')}, code listens on {port}")
        service = services.get(name)
        if not service or service["spec"]["ports"][0]["port"] != port:
            fail(f"{where}: Service {name} must expose port {port}")
        expected_probes = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
        for probe, path in expected_probes.items():
            got = container.get(probe, {}).get("httpGet", {})
            if got.get("path") != path or got.get("port") not in ("http", port):
                fail(f"{where}: {name} {probe} is {got}, expected {path} on the http port")
            if path not in routes:
                fail(f"{name} serves no {path} route (platform/src/ops.rs, {crate}/src/ops.rs)")
        monitor = monitors.get(name)
        if not monitor or monitor["spec"]["endpoints"][0].get("path") != "/metrics" or "/metrics" not in routes:
            fail(f"{where}: ServiceMonitor {name} must scrape /metrics on the http port")

        # Graceful termination covers the preStop pause plus the service's own drain.
        grace = duration_seconds(env.get("HOLDFAST_SHUTDOWN_GRACE") or variables["HOLDFAST_SHUTDOWN_GRACE"])
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        if pod.get("terminationGracePeriodSeconds", 30) < pre_stop + grace + 5:
            fail(f"{where}: {name} terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} "
                 f"< preStop {pre_stop}s + HOLDFAST_SHUTDOWN_GRACE {grace}s + 5s")

        # Autoscaling: never more consumers than partitions; lag metric on the real group.
        hpa = hpas.get(name)
        if not hpa:
            fail(f"{where}: HPA {name} missing")
            continue
        target = hpa["spec"]["scaleTargetRef"]
        rollout = by_kind(docs, "Rollout").get(target["name"])
        if target["kind"] == "Deployment" and target["name"] != name:
            fail(f"{where}: HPA {name} scales Deployment {target['name']}")
        elif target["kind"] == "Rollout" and (not rollout or rollout["spec"].get("workloadRef", {}).get("name") != name):
            fail(f"{where}: HPA {name} scales Rollout {target['name']}, which does not run Deployment {name}")
        partitions = int(env.get("HOLDFAST_PARTITIONS") or partitions_default)
        if hpa["spec"]["maxReplicas"] > partitions:
            fail(f"{where}: HPA {name} maxReplicas {hpa['spec']['maxReplicas']} > {partitions} partitions")
        groups = [m["external"]["metric"]["selector"]["matchLabels"].get("consumergroup")
                  for m in hpa["spec"]["metrics"] if m["type"] == "External"]
        if name in CONSUMERS:
            prefix = env.get("HOLDFAST_TOPIC_PREFIX", "")
            expected = prefix + (code["command-group"] if name == "command-service"
                                 else env.get("HOLDFAST_PROJECTION_GROUP") or variables["HOLDFAST_PROJECTION_GROUP"])
            if groups != [expected]:
                fail(f"{where}: HPA {name} scales on lag of {groups}, the service's group is {expected}")
        if overlay == "prod":
            low, high, cpu, memory = PROD_SIZING[name]
            resources = container["resources"]
            if (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) != (low, high):
                fail(f"prod: HPA {name} {hpa['spec']['minReplicas']}-{hpa['spec']['maxReplicas']}, brief says {low}-{high}")
            for kind in ("requests", "limits"):
                if (str(resources[kind]["cpu"]), resources[kind]["memory"]) != (cpu, memory):
                    fail(f"prod: {name} {kind} {resources[kind]}, brief says {cpu} CPU / {memory}")

    # The ownership alert counts the configured partitions.
    for rule_set in rules.values():
        for group in rule_set["spec"]["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == "HoldfastPartitionsUnowned" and f"< {partitions_default}" not in rule["expr"]:
                    fail(f"{where}: HoldfastPartitionsUnowned must compare with {partitions_default} partitions")


def check_dockerfiles(code: dict) -> None:
    for name, (crate, listen_var) in SERVICES.items():
        routes = ops_routes(crate)
        text = read(f"infra/docker/{name}.Dockerfile")
        port = code[name][listen_var].rsplit(":", 1)[1]
        if f"EXPOSE {port}" not in text:
            fail(f"infra/docker/{name}.Dockerfile must EXPOSE {port}")
        if f"http://127.0.0.1:{port}/healthz" not in text or "/healthz" not in routes:
            fail(f"infra/docker/{name}.Dockerfile HEALTHCHECK must probe :{port}/healthz")
        if f"{listen_var}=0.0.0.0:{port}" not in text:
            fail(f"infra/docker/{name}.Dockerfile must set {listen_var}=0.0.0.0:{port}")
        if not re.search(r"^USER (?!root|0\b)", text, re.M):
            fail(f"infra/docker/{name}.Dockerfile must run as a non-root user")


def check_terraform(partitions_default: int) -> None:
    for env in ("dev", "staging", "prod"):
        main = read(f"infra/terraform/envs/{env}/main.tf")
        outputs = read(f"infra/terraform/envs/{env}/outputs.tf")
        match = re.search(r"^\s*partitions\s*=\s*(\d+)", main, re.M)
        if not match or int(match.group(1)) != partitions_default:
            fail(f"infra/terraform/envs/{env}: partitions must be {partitions_default} (HOLDFAST_PARTITIONS)")
        tf_keys = set(re.findall(r'^\s*"([A-Z][A-Z0-9_]*)=', outputs, re.M))
        overlay_keys = {line.split("=", 1)[0] for line in read(f"infra/k8s/overlays/{env}/infra.env").splitlines() if "=" in line}
        if tf_keys != overlay_keys:
            fail(f"{env}: Terraform k8s_config_env keys {sorted(tf_keys)} != overlay infra.env keys {sorted(overlay_keys)}")
    prod = read("infra/terraform/envs/prod/main.tf")

    def module_setting(module: str, key: str) -> int | None:
        block = re.search(rf'^module "{module}" {{\n(.*?)^}}', prod, re.S | re.M)
        value = block and re.search(rf"^\s*{key}\s*=\s*(\d+)", block.group(1), re.M)
        return int(value.group(1)) if value else None

    if module_setting("messaging", "brokers") != 15 or partitions_default % 15:
        fail("prod: Kafka must have 15 brokers and the partition count must divide by them")
    shards, replicas = module_setting("databases", "shards"), module_setting("databases", "replicas_per_shard")
    if (shards, (replicas or 0) * (shards or 0)) != (4, 20):
        fail(f"prod: PostgreSQL must be 4 primaries + 20 replicas (found {shards} shards x {replicas} readers)")
    redis = (module_setting("cache", "shards") or 0) * (1 + (module_setting("cache", "replicas_per_shard") or 0))
    if redis != 21:
        fail(f"prod: Redis must have 21 nodes (found {redis})")


def infra_keys() -> dict[str, tuple[str, str]]:
    """holdfast-infra key -> (service, variable) for every key a service's Deployment reads."""
    keys = {}
    for name in SERVICES:
        deployment = yaml.safe_load(read(f"infra/k8s/base/{name}/deployment.yaml"))
        for item in deployment["spec"]["template"]["spec"]["containers"][0].get("env", []):
            ref = item.get("valueFrom", {}).get("configMapKeyRef")
            if ref and ref["name"] == "holdfast-infra":
                keys[ref["key"]] = (name, item["name"])
    return keys


def check_terraform_credentials(redis_prefixes: set[str]) -> None:
    """Terraform makes the users the manifests sign in as, and writes URLs with them, over TLS."""
    users = {store: sorted({own[store] for own in CREDENTIALS.values() if store in own}) for store in STORES}
    locals_for = {"kafka": "kafka_users", "redis": "redis_users", "postgres": "postgres_roles"}
    readers = infra_keys()
    for env in ("dev", "staging", "prod"):
        main = read(f"infra/terraform/envs/{env}/main.tf")
        for store, local in locals_for.items():
            match = re.search(rf"^\s*{local}\s*=\s*\[([^\]]*)\]", main, re.M)
            found = sorted(re.findall(r'"([^"]+)"', match.group(1))) if match else None
            if found != users[store]:
                fail(f"infra/terraform/envs/{env}: local.{local} is {found}, the manifests' {store} users are {users[store]}")
        outputs = read(f"infra/terraform/envs/{env}/outputs.tf")
        tls = re.search(r'postgres_tls\s*=\s*"([^"]*)"', outputs)
        for key, template in re.findall(r'^\s*"([A-Z][A-Z0-9_]*)=(.*)\\n",$', outputs, re.M):
            if key not in readers or not key.endswith("_URLS"):
                continue
            name, variable = readers[key]
            store = "postgres" if variable.startswith("HOLDFAST_POSTGRES_") else "redis"
            user = CREDENTIALS[name].get(store)
            scheme = "postgres://" if store == "postgres" else "rediss://"
            if f"{scheme}{user}@" not in template:
                fail(f"infra/terraform/envs/{env}/outputs.tf: {key} (read by {name}) must be {scheme}{user}@...")
            if store == "postgres" and ("${local.postgres_tls}" not in template or not tls or "sslmode=verify-full" not in tls.group(1)):
                fail(f"infra/terraform/envs/{env}/outputs.tf: {key} must end in local.postgres_tls with sslmode=verify-full")
    cache = read("infra/terraform/modules/cache/variables.tf")
    default = re.search(r'variable "key_prefix" \{.*?default\s*=\s*"([^"]*)"', cache, re.S)
    if not default or {default.group(1)} != redis_prefixes:
        fail(f"infra/terraform/modules/cache: key_prefix default {default and default.group(1)} != HOLDFAST_REDIS_KEY_PREFIX {sorted(redis_prefixes)}")
    access = read("infra/terraform/modules/cache/main.tf")
    for user in users["redis"]:
        if not re.search(rf'"{user}"\s*=\s*"on ~\$\{{var\.key_prefix\}}\*', access):
            fail(f"infra/terraform/modules/cache: user {user} must be on and limited to ~${{var.key_prefix}}*")


def check_bootstrap(code: dict, projection_groups: set[str]) -> None:
    """The deploy bootstrap grants ACLs to the services' Kafka users on their real groups."""
    script = read("infra/k8s/base/bootstrap/kafka-access.sh")

    def setting(var: str) -> str | None:
        match = re.search(rf"^{var}=(\S+)$", script, re.M)
        return match.group(1) if match else None

    expected = {"command_user": CREDENTIALS["command-service"]["kafka"],
                "projection_user": CREDENTIALS["projection-workers"]["kafka"],
                "command_group": code["command-group"]}
    for var, value in expected.items():
        if setting(var) != value:
            fail(f"infra/k8s/base/bootstrap/kafka-access.sh: {var}={setting(var)}, expected {value}")
    job = yaml.safe_load(read("infra/k8s/base/bootstrap/job.yaml"))
    env = {item["name"]: item.get("valueFrom", {}).get("configMapKeyRef", {})
           for c in job["spec"]["template"]["spec"]["containers"] for item in c.get("env", [])}
    group = env.get("PROJECTION_GROUP", {})
    if (group.get("name"), group.get("key")) != ("projection-workers-config", "HOLDFAST_PROJECTION_GROUP") or len(projection_groups) != 1:
        fail(f"bootstrap Job: PROJECTION_GROUP must come from projection-workers-config (groups seen: {sorted(projection_groups)})")
    if job["spec"]["template"]["metadata"].get("annotations", {}).get("sidecar.istio.io/inject") != "false":
        fail("bootstrap Job: an Istio sidecar would keep it from completing (sidecar.istio.io/inject: \"false\")")


def check_openapi() -> None:
    document = json.loads(read("docs/api/command-api.openapi.json"))
    routes = set(re.findall(r'\.route\("(/v1/[^"]+)"', read("command-service/src/http/mod.rs")))
    if set(document["paths"]) != routes:
        fail(f"docs/api/command-api.openapi.json paths {sorted(document['paths'])} != routes {sorted(routes)}")


def main() -> None:
    rendered = Path(sys.argv[1])
    code = {name: service_variables(crate) for name, (crate, _) in SERVICES.items()}
    group = re.search(r'group_id: format!\("\{\}([^"]+)"', read("command-service/src/lib.rs"))
    code["command-group"] = group.group(1) if group else fail("command-service group id not found")
    documented = documented_variables()
    partitions_default = int(code["command-service"]["HOLDFAST_PARTITIONS"])
    for name, (crate, listen_var) in SERVICES.items():
        if listen_var not in code[name]:
            fail(f"{crate}/src/config.rs has no {listen_var}")
        for var in code[name]:
            if var not in documented:
                fail(f"{crate} reads {var}, which docs/configuration.md does not document")
    checked = 0
    for overlay in ("dev", "staging", "prod"):
        check_overlay(overlay, load(rendered, overlay), code, documented, partitions_default)
        checked += 1
    check_dockerfiles(code)
    check_terraform(partitions_default)
    check_terraform_credentials(SEEN["redis_prefix"])
    check_bootstrap(code, SEEN["projection_group"])
    check_openapi()
    if ERRORS:
        print("\n".join(f"inconsistent: {error}" for error in dict.fromkeys(ERRORS)))
        sys.exit(1)
    print(f"consistent: {checked} overlays x {len(SERVICES)} services, credentials, Dockerfiles, Terraform, "
          f"bootstrap, OpenAPI "
          f"(ports, probes, {sum(len(code[n]) for n in SERVICES)} variables, {partitions_default} partitions)")


if __name__ == "__main__":
    main()
