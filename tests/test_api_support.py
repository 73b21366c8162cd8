"""Shared set-up of the HTTP API tests: an app over a service from ``service_factory``
and one key of every role (this module holds no tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from jobbudget.api.app import create_app
from jobbudget.service import BudgetService


@dataclass
class Api:
    client: TestClient
    service: BudgetService
    keys: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def get(self, path: str, who: str = "admin", **kw: Any) -> Any:
        return self.client.get(path, headers={**self.h(who), **kw.pop("headers", {})}, **kw)

    def post(self, path: str, who: str = "admin", **kw: Any) -> Any:
        return self.client.post(path, headers={**self.h(who), **kw.pop("headers", {})}, **kw)

    def put(self, path: str, who: str = "admin", **kw: Any) -> Any:
        return self.client.put(path, headers={**self.h(who), **kw.pop("headers", {})}, **kw)

    def patch(self, path: str, who: str = "admin", **kw: Any) -> Any:
        return self.client.patch(path, headers={**self.h(who), **kw.pop("headers", {})}, **kw)

    def delete(self, path: str, who: str = "admin", **kw: Any) -> Any:
        return self.client.delete(path, headers={**self.h(who), **kw.pop("headers", {})}, **kw)


def make_api(service: BudgetService, **app_args: Any) -> Api:
    keys = {
        "admin": service.create_api_key(role="admin", name="root")[1],
        "acme": service.create_api_key(role="tenant", tenant_id="acme", name="acme")[1],
        "globex": service.create_api_key(role="tenant", tenant_id="globex", name="globex")[1],
        "reporter": service.create_api_key(role="reporter", name="reports")[1],
        "acme-reporter": service.create_api_key(role="reporter", tenant_id="acme", name="acme reports")[1],
    }
    client = TestClient(create_app(service, **app_args), raise_server_exceptions=False)
    return Api(client=client, service=service, keys=keys)


def job(job_id: str, tenant: str = "acme", queue: str = "default", **extra: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "tenant_id": tenant,
        "queue_name": queue,
        "cpu_time": 10,
        "memory_mb_seconds": 512,
        "payload_bytes": 2048,
        "redis_ops": 100,
        "network_bytes": 1048576,
        **extra,
    }


def budget(tenant: str = "acme", amount: Any = "100.00", **extra: Any) -> dict[str, Any]:
    return {"tenant_id": tenant, "amount": amount, "period": {"type": "monthly"}, **extra}


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}
    result: dict[str, Any] = body["error"]
    return result
