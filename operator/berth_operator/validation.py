"""Parses and validates a ModelDeployment offline, with the same rules the API server enforces.

Field constraints are checked by pydantic; the CEL rules declared on the API models are evaluated here
by a CEL interpreter, so `berth render` and the operator reject exactly what admission rejects, with the
same messages. Errors name the field path, e.g. `spec.model.revision: is required for hf:// sources`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import cel
from pydantic import BaseModel, ValidationError

from berth_operator.api import ApiModel, ModelDeployment, ModelDeploymentSpec


class SpecError(ValueError):
    """A ModelDeployment that cannot be served as written; `problems` are `path: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@cache
def _program(rule: str) -> Any:
    return cel.compile(rule)


def _rule_violations(model: BaseModel, path: str) -> list[str]:
    problems: list[str] = []
    if isinstance(model, ApiModel) and model.rules:
        context = {"self": model.model_dump(by_alias=True, exclude_none=True, mode="json")}
        for rule in model.rules:
            if not _program(rule.rule).execute(context):
                problems.append(f"{path}{rule.field_path or ''}: {rule.message}")
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        child = f"{path}.{field.alias or name}"
        if isinstance(value, BaseModel):
            problems += _rule_violations(value, child)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    problems += _rule_violations(item, f"{child}[{index}]")
    return problems


def _field_errors(error: ValidationError, prefix: str) -> list[str]:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"] if p not in ("int", "str") and not str(p).startswith("function-"))
        lines.append(f"{prefix}.{where}: {item['msg']}" if where else f"{prefix}: {item['msg']}")
    return lines


def parse_spec(raw: dict[str, Any]) -> ModelDeploymentSpec:
    try:
        spec = ModelDeploymentSpec.model_validate(raw)
    except ValidationError as error:
        raise SpecError(_field_errors(error, "spec")) from None
    problems = _rule_violations(spec, "spec")
    if problems:
        raise SpecError(problems)
    return spec


def parse_model_deployment(body: dict[str, Any]) -> ModelDeployment:
    """The object as the operator sees it: metadata as is, spec validated, status ignored."""
    metadata = dict(body.get("metadata") or {})
    if not metadata.get("name"):
        raise SpecError(["metadata.name: required"])
    return ModelDeployment(metadata=metadata, spec=parse_spec(body.get("spec") or {}))
