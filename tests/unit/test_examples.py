"""Every shipped example is a valid ModelDeployment that renders."""

from pathlib import Path

import pytest
import yaml

from berth_operator.cli import main as berth

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_renders(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert berth(["render", "-f", str(example)]) == 0
    kinds = [doc["kind"] for doc in yaml.safe_load_all(capsys.readouterr().out)]
    assert kinds[:2] == ["Service", "Deployment"]


def test_render_reports_every_problem_with_its_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: berth.dev/v1alpha1\nkind: ModelDeployment\nmetadata: {name: bad}\n"
        "spec: {model: {source: 'hf://org/m'}, version: v1, gpus: 3}\n"
    )
    assert berth(["render", "-f", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "ModelDeployment bad: spec.model.revision: is required for hf:// sources" in err
    assert "spec.gpus: must be 0 (CPU) or 1, 2, 4, 8 or 16" in err
