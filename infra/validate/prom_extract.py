"""Turns Holdfast's PrometheusRule resources and Grafana dashboards into plain Prometheus rule
files, so `promtool check rules` parses every PromQL expression and `promtool test rules` can
run the alert unit tests against exactly the rules that are deployed.

usage: prom_extract.py OUT_DIR RULE_YAML... -- DASHBOARD_JSON...
Writes OUT_DIR/<PrometheusRule name>.rules.yaml and OUT_DIR/dashboards.rules.yaml (each
dashboard query wrapped as a recording rule; Grafana's variables replaced by sample values).
"""

import json
import re
import sys
from pathlib import Path

import yaml

# Grafana template variables and the values used to make the queries parseable.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${namespace}": "holdfast-prod",
    "$namespace": "holdfast-prod",
    "${consumergroup}": "holdfast.projection-workers",
    "$consumergroup": "holdfast.projection-workers",
    "${topic}": "reservations.events",
    "$topic": "reservations.events",
}


def rule_files(out: Path, paths: list[str]) -> int:
    count = 0
    for path in paths:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if not doc or doc.get("kind") != "PrometheusRule":
                continue
            name = doc["metadata"]["name"]
            target = out / f"{name}.rules.yaml"
            target.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}, sort_keys=False))
            count += 1
    return count


def panels(dashboard: dict):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def dashboard_rules(out: Path, paths: list[str]) -> int:
    rules = []
    for path in paths:
        dashboard = json.loads(Path(path).read_text())
        uid = re.sub(r"[^a-zA-Z0-9_]", "_", dashboard.get("uid") or Path(path).stem)
        for panel in panels(dashboard):
            for index, target in enumerate(panel.get("targets", [])):
                expr = target.get("expr")
                if not expr:
                    continue
                for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
                    expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
                if "$" in expr:
                    sys.exit(f"{path}: panel {panel.get('title')!r} uses an unknown variable: {expr}")
                rules.append({"record": f"dashboard:{uid}:panel{panel.get('id')}_{index}", "expr": expr})
    (out / "dashboards.rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False)
    )
    return len(rules)


def main() -> None:
    out = Path(sys.argv[1])
    args = sys.argv[2:]
    split = args.index("--") if "--" in args else len(args)
    out.mkdir(parents=True, exist_ok=True)
    groups = rule_files(out, args[:split])
    queries = dashboard_rules(out, args[split + 1 :])
    print(f"{groups} PrometheusRule resources, {queries} dashboard queries")


if __name__ == "__main__":
    main()
