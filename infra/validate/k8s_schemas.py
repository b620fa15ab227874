"""Makes standalone JSON schemas for kubeconform from the Kubernetes schemas that the
kubernetes-validate package ships (offline), for the built-in kinds found in the given
manifests. kubernetes-validate's schemas point into one shared _definitions.json through
absolute `$ref`s that kubeconform cannot follow; each written schema carries the definitions
it needs under `$defs` instead.

usage: k8s_schemas.py OUT_DIR K8S_VERSION MANIFEST...
Writes OUT_DIR/<kind>-<group>-<version>.json (kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}).
"""

import json
import sys
from pathlib import Path

import kubernetes_validate
import yaml

REF_PREFIX = "/api/_definitions.json#/$defs/"
LOCAL_PREFIX = "#/$defs/"


def refs(node, found):
    if isinstance(node, dict):
        ref = node.get("$ref")
        for prefix in (REF_PREFIX, LOCAL_PREFIX):
            if isinstance(ref, str) and ref.startswith(prefix):
                found.add(ref[len(prefix):])
        for value in node.values():
            refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)
    return found


def main() -> None:
    out, version, manifests = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    source = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    out.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for manifest in manifests:
        for doc in yaml.safe_load_all(Path(manifest).read_text()):
            if doc:
                api_version = doc["apiVersion"]
                group, _, ver = api_version.rpartition("/")
                suffix = f"-{group.split('.')[0]}-{ver}" if group else f"-{ver}"
                wanted.add(f"{doc['kind'].lower()}{suffix}.json")
    written = 0
    for name in sorted(wanted):
        path = source / name
        if not path.exists():
            continue  # a custom resource: its schema is in infra/k8s/schemas
        schema = json.loads(path.read_text())
        needed, queue = set(), list(refs(schema, set()))
        while queue:
            item = queue.pop()
            if item not in needed:
                needed.add(item)
                queue.extend(refs(definitions[item], set()) - needed)
        schema["$defs"] = {key: definitions[key] for key in sorted(needed)}
        schema.pop("$id", None)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        (out / name).write_text(json.dumps(schema).replace(REF_PREFIX, LOCAL_PREFIX))
        written += 1
    print(f"{written} built-in schemas for Kubernetes {version}")


if __name__ == "__main__":
    main()
