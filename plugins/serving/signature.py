"""Prediction input checked against the model's MLflow signature in the server,
so that a missing, unknown or mistyped feature is a 422 naming it (the model
worker would otherwise fail on it, or quietly coerce it)."""

from __future__ import annotations

from mlflow_hokusai.errors import ValidationFailed


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# MLflow DataType name -> (check, what the message calls it)
TYPES = {"double": (_number, "a number"), "float": (_number, "a number"),
         "long": (_integer, "an integer"), "integer": (_integer, "an integer"),
         "boolean": (lambda v: isinstance(v, bool), "true or false"),
         "string": (lambda v: isinstance(v, str), "a string")}


def _issue(loc: list, msg: str, kind: str) -> dict:
    return {"loc": loc, "msg": msg, "type": kind}


def _record_issues(record, columns: list[dict], loc: list) -> list[dict]:
    if not isinstance(record, dict):
        return [_issue(loc, "A record must be an object of feature values", "dict_type")]
    issues = []
    for column in columns:
        name = column["name"]
        value = record.get(name)
        if value is None:
            if column.get("required", True):
                issues.append(_issue([*loc, name], f"Missing feature '{name}'", "missing"))
            continue
        check, wanted = TYPES.get(column["type"], (lambda v: True, ""))
        if not check(value):
            issues.append(_issue([*loc, name], f"Feature '{name}' must be {wanted} "
                                 f"({column['type']})", "type_error"))
    known = {column["name"] for column in columns}
    issues += [_issue([*loc, name], f"Unknown feature '{name}'", "extra_forbidden")
               for name in record if name not in known]
    return issues


def check(records: list, columns: list[dict] | None, loc: list) -> None:
    """Raise 422 listing every problem of every record."""
    if not records:
        raise ValidationFailed([_issue(loc, "No records given", "too_short")])
    if columns is None:  # no column signature: the model judges its input
        return
    issues = []
    for index, record in enumerate(records):
        issues += _record_issues(record, columns, [*loc, index] if len(records) > 1 else loc)
    if issues:
        raise ValidationFailed(issues)
