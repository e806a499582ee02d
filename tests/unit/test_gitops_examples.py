"""The Argo CD and Flux examples install this chart's version with values the chart accepts."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.helm import CHART, helm

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHART_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]


def documents(path: Path) -> dict[str, dict]:
    return {doc["kind"] + "/" + doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(path.read_text())}


def renders_with(values: dict, tmp_path: Path) -> None:
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    helm("template", "berth", str(CHART), "-n", "berth-system", "-f", str(file))  # fails on a schema error


def test_argo_cd_application_installs_this_chart(tmp_path: Path) -> None:
    docs = documents(EXAMPLES / "argocd" / "application.yaml")
    operator = docs["Application/berth"]["spec"]
    assert (operator["source"]["chart"], operator["source"]["targetRevision"]) == ("berth", CHART_VERSION)
    assert "ServerSideApply=true" in operator["syncPolicy"]["syncOptions"]
    renders_with(operator["source"]["helm"]["valuesObject"], tmp_path)
    models = docs["Application/models"]
    assert int(models["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) > 0, "after the CRD"


def test_flux_helm_release_installs_this_chart_and_manages_its_crds(tmp_path: Path) -> None:
    docs = documents(EXAMPLES / "flux" / "helmrelease.yaml")
    release = docs["HelmRelease/berth"]["spec"]
    assert (release["chart"]["spec"]["chart"], release["chart"]["spec"]["version"]) == ("berth", CHART_VERSION)
    assert release["install"]["crds"] == release["upgrade"]["crds"] == "CreateReplace"
    renders_with(release["values"], tmp_path)
    assert docs["Kustomization/models"]["spec"]["wait"] is True
