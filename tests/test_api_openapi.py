"""/openapi.json is valid by the OpenAPI standard's own validator and declares the
errors the server really answers, with the body it really sends (``ErrorOut``); the
answers themselves are checked against these declarations by the schemathesis test
and, through a generated client, in ``tests/e2e``."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi")

from openapi_spec_validator import validate

from jobbudget.api import docgen

ERROR_REF = "#/components/schemas/ErrorOut"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return docgen.openapi_schema()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, item in spec["paths"].items() for m, op in item.items() if m in METHODS]


def test_the_schema_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)
    defaults = spec["components"]["schemas"]["JobIn"]["properties"]["memory_mb_seconds"]["default"]
    assert defaults == 0 and isinstance(defaults, int)  # a number, as the field's type says


def test_every_error_is_declared_with_the_error_model(spec: dict[str, Any]) -> None:
    assert not {"HTTPValidationError", "ValidationError"} & set(spec["components"]["schemas"])
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)
                assert response["description"], (method, path, status)


def test_each_operation_declares_the_statuses_it_can_answer(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        declared = {int(s) for s in op["responses"]}
        if path.startswith("/v1/"):
            assert {401, 503} <= declared, (method, path)  # a key is checked, the database asked
        if op.get("parameters") or "requestBody" in op:
            assert 422 in declared, (method, path)
        if "requestBody" in op:
            assert {400, 413} <= declared, (method, path)  # not JSON, too large
    responses = {(m, p): {int(s) for s in op["responses"]} for m, p, op in operations(spec)}
    assert responses["GET", "/healthz"] == {200}
    assert responses["GET", "/readyz"] == {200, 503}
    assert 403 in responses["PUT", "/v1/cost-model"] and 404 in responses["GET", "/v1/budgets/{budget_id}"]
    assert 502 in responses["POST", "/v1/budgets/{budget_id}/channels/{index}/test"]
    assert "WWW-Authenticate" in spec["paths"]["/v1/jobs"]["post"]["responses"]["401"]["headers"]
    assert "Retry-After" in spec["paths"]["/readyz"]["get"]["responses"]["503"]["headers"]
