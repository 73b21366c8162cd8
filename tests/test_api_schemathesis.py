"""Property test over /openapi.json: schemathesis generates requests for every
operation (valid and invalid by the schema); none may get a 5xx, and every answer must
be one the schema declares: its status, its content type and its body's schema
(errors included, as ``ErrorOut``)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest

schemathesis = pytest.importorskip("schemathesis")

from fastapi import FastAPI  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jobbudget.api.app import create_app  # noqa: E402
from jobbudget.config import Config  # noqa: E402
from jobbudget.service import BudgetService  # noqa: E402
from jobbudget.storage.memory import MemoryStore  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.slow]
DECLARED = [status_code_conformance, content_type_conformance, response_schema_conformance]


#: The schema is read when the module is collected, from the app over a stand-in that
#: has only a configuration (routes describe themselves without a service); the
#: requests go to the ``app`` fixture's, over a real service built when the test runs.
#: (schemathesis's lazy loader, ``schemathesis.pytest.from_fixture``, fails under
#: pytest 9: it sets ``Item._nodeid``, which pytest no longer has.)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(cast(Any, SimpleNamespace(config=Config()))))


@pytest.fixture(scope="module")
def service() -> Iterator[BudgetService]:
    with BudgetService(Config(notifications_in_background=False), store=MemoryStore()) as service:
        yield service


@pytest.fixture(scope="module")
def app(service: BudgetService) -> FastAPI:
    return create_app(service)


@pytest.fixture(scope="module")
def auth(service: BudgetService) -> dict[str, str]:
    return {"Authorization": f"Bearer {service.create_api_key(role='admin', name='schemathesis')[1]}"}


@schema.parametrize()  # type: ignore[untyped-decorator]
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gives_a_server_error(case: Any, app: FastAPI, auth: dict[str, str]) -> None:
    response = case.call(headers=auth, app=app)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}, response.text[:500]
    case.validate_response(response, checks=DECLARED, headers=auth)
