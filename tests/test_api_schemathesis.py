"""Property test over /openapi.json: schemathesis generates requests for every
operation (valid and invalid by the schema); none may get a 5xx, and every answer must
be one the schema declares: its status, its content type and its body's schema
(errors included, as ``ErrorOut``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

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

os.environ.setdefault("JOBBUDGET_NOTIFICATIONS_IN_BACKGROUND", "false")
SERVICE = BudgetService(Config(), store=MemoryStore())
ADMIN = SERVICE.create_api_key(role="admin", name="schemathesis")[1]
AUTH = {"Authorization": f"Bearer {ADMIN}"}
DECLARED = [status_code_conformance, content_type_conformance, response_schema_conformance]
APP = create_app(SERVICE)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _close_service() -> Iterator[None]:
    yield
    SERVICE.close()


@schema.parametrize()  # type: ignore[untyped-decorator]
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gives_a_server_error(case: Any) -> None:
    response = case.call(headers=AUTH)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}, response.text[:500]
    case.validate_response(response, checks=DECLARED, headers=AUTH)
