"""Generates the ModelDeployment CRD from the pydantic API (berth_operator.api).

`python -m berth_operator.crd` prints it; crds/ holds the committed copy, and a test fails when that
copy is stale. The generated schema is structural: every $ref inlined, optional fields as plain
properties, no titles, CEL rules as x-kubernetes-validations on the object that declares them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from berth_operator import api

CRD_FILE = f"{api.GROUP}_{api.PLURAL}.yaml"
# kubectl apply -f crds/, and the Helm chart's own copy (Helm installs a chart's crds/ before anything else).
CRD_FOLDERS = ("crds", "charts/berth/crds")

PRINTER_COLUMNS = [
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.source"},
    {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
    {"name": "Quant", "type": "string", "jsonPath": ".spec.quantization"},
    {"name": "GPUs", "type": "integer", "jsonPath": ".spec.gpus"},
    {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
    {"name": "Up-to-date", "type": "integer", "jsonPath": ".status.updatedReplicas"},
    {"name": "Available", "type": "integer", "jsonPath": ".status.availableReplicas"},
    {"name": "Serving", "type": "string", "jsonPath": ".status.servingVersion", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _rules_by_title() -> dict[str, list[dict[str, str]]]:
    """CEL rules of every API model, keyed by the title pydantic gives its schema."""
    found: dict[str, list[dict[str, str]]] = {}
    pending: list[type[BaseModel]] = [api.ModelDeploymentSpec, api.ModelDeploymentStatus]
    while pending:
        model = pending.pop()
        if issubclass(model, api.ApiModel) and model.rules:
            found[model.__name__] = [r.model_dump(by_alias=True, exclude_none=True) for r in model.rules]
        for field in model.model_fields.values():
            for candidate in _models_in(field.annotation):
                pending.append(candidate)
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _structural(node: Any, defs: dict[str, Any], rules: dict[str, list[dict[str, str]]]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs, rules) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs, rules)
    node = dict(node)
    title = node.pop("title", None)
    if node.get("additionalProperties") is False:
        node.pop("additionalProperties")  # pruning already drops unknown fields; structural schemas forbid it
    if node.get("x-kubernetes-int-or-string"):
        node.pop("anyOf", None)
    elif "anyOf" in node:
        # Optional[X] is X with no default: absent means unset.
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {options} structurally")
        return _structural({**options[0], **node}, defs, rules)
    if node.get("default") is None or node.get("default") == []:
        node.pop("default", None)
    if node.get("x-kubernetes-preserve-unknown-fields"):
        node.pop("additionalProperties", None)
    out = {key: _structural(value, defs, rules) for key, value in node.items() if key not in ("$defs", "properties")}
    if "properties" in node:
        out["properties"] = {k: _structural(v, defs, rules) for k, v in node["properties"].items()}
    if title in rules and node.get("type") == "object":
        out["x-kubernetes-validations"] = rules[title]
    return out


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(raw, defs, _rules_by_title())


def render_crd() -> dict[str, Any]:
    spec_schema = schema_of(api.ModelDeploymentSpec)
    status_schema = schema_of(api.ModelDeploymentStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{api.PLURAL}.{api.GROUP}",
            "labels": {"app.kubernetes.io/name": "berth", "app.kubernetes.io/part-of": "berth"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": api.SHORT_NAMES,
                "categories": ["berth"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": api.ModelDeployment.__doc__,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `python -m berth_operator.crd` from berth_operator/api.py. Do not edit.\n"
    return header + yaml.safe_dump(render_crd(), sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args and args[0] == "--write":
        for folder in CRD_FOLDERS:
            target = Path(folder) / CRD_FILE
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(crd_yaml())
            print(f"wrote {target}", file=sys.stderr)
    else:
        sys.stdout.write(crd_yaml())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
