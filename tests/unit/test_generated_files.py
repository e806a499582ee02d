"""The committed CRD and RBAC are generated from the code; these fail when a copy is stale."""

from pathlib import Path

from berth_operator import crd, rbac

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crds_match_the_pydantic_api() -> None:
    for folder in crd.CRD_FOLDERS:  # crds/ and the chart's copy
        committed = (ROOT / folder / crd.CRD_FILE).read_text()
        assert committed == crd.crd_yaml(), f"stale CRD in {folder}: run `make generate`"


def test_committed_rbac_matches_the_declared_rules() -> None:
    assert (ROOT / rbac.RBAC_FILE).read_text() == rbac.rbac_yaml(), "stale RBAC: run `make generate`"
    assert (ROOT / rbac.CHART_RULES_FILE).read_text() == rbac.chart_rules_yaml(), "stale chart RBAC: `make generate`"


def test_rbac_has_no_wildcards() -> None:
    for rule in rbac.RULES:
        assert "*" not in (rule.group, rule.resource, *rule.verbs), rule


def test_crd_schema_is_structural() -> None:
    """Every node has a type (or is int-or-string / preserve-unknown); no anyOf, $ref or closed objects."""

    def walk(node: dict, where: str) -> None:
        assert "$ref" not in node and "anyOf" not in node and node.get("additionalProperties") is not False, where
        special = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
        assert "type" in node or special, where
        for name, child in (node.get("properties") or {}).items():
            walk(child, f"{where}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{where}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{where}{{}}")

    schema = crd.render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    walk(schema, "")
