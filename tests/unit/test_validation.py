"""Offline validation rejects what admission rejects, naming the field (tests/cluster asks the API server)."""

from __future__ import annotations

import pytest

from berth_operator.validation import SpecError, parse_model_deployment
from tests.support.manifests import INVALID, Invalid, model_deployment


def test_valid_manifest_parses_with_defaults() -> None:
    md = parse_model_deployment(model_deployment())
    assert md.spec.rollout.max_surge == 1
    assert md.spec.runtime.max_batch_size == 32
    assert md.spec.gpu_resource_name == "nvidia.com/gpu"


@pytest.mark.parametrize("invalid", INVALID, ids=lambda i: i.case)
def test_invalid_manifest_is_rejected_naming_the_field(invalid: Invalid) -> None:
    with pytest.raises(SpecError) as caught:
        parse_model_deployment(invalid.manifest())
    problem = next((p for p in caught.value.problems if p.startswith(invalid.path)), None)
    assert problem, f"no problem names {invalid.path}: {caught.value.problems}"
    for word in invalid.says:
        assert word in problem, problem


def test_every_problem_is_reported_at_once() -> None:
    body = model_deployment(replicas=-1, quantization="int3")
    with pytest.raises(SpecError) as caught:
        parse_model_deployment(body)
    assert {p.split(":")[0] for p in caught.value.problems} == {"spec.replicas", "spec.quantization"}
