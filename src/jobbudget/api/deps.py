"""Dependencies (Annotated, as in the FastAPI full-stack template): the service from
``app.state``, the API key of the request, exact JSON bodies, and tenant access."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from ..domain.apikeys import ApiKey, can
from ..domain.budget import Budget
from ..domain.errors import (
    NotFoundError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from ..domain.jsontext import loads_exact as decode_exact
from ..service import BudgetService
from .auth import STATE_KEY, key_of

__all__ = [
    "ExactJSONRoute",
    "KeyDep",
    "ServiceDep",
    "actor_of",
    "current_key",
    "get_service",
    "loads_exact",
    "require_admin",
    "require_read",
    "require_budget_write",
    "require_write",
    "tenant_scope",
]


async def get_service(request: Request) -> BudgetService:
    service = request.app.state.service
    assert isinstance(service, BudgetService)
    return service


ServiceDep = Annotated[BudgetService, Depends(get_service)]
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")


async def current_key(
    request: Request,
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The API key of the request (401 without one or with an unknown or revoked one):
    the one :class:`.auth.AuthFirstMiddleware` found before the body was read, else
    (an app built without it) found by :func:`.auth.key_of` (from memory, or looked up
    in a worker thread; a refused key is remembered as refused for a few seconds)."""
    found = request.scope.get("state", {}).get(STATE_KEY)
    if isinstance(found, ApiKey):
        return found
    return await key_of(service, credentials.credentials if credentials is not None else None)


KeyDep = Annotated[ApiKey, Depends(current_key)]


def actor_of(key: ApiKey) -> str:
    return f"apikey:{key.name or key.id}"


def require_admin(service: BudgetService, key: ApiKey) -> None:
    """Admin actions (the cost model, applying a calibration): 403 for other keys."""
    service.authorize(key, action="admin", tenant_id=None)


def require_write(service: BudgetService, key: ApiKey, tenant_id: str) -> None:
    """Writes: admin anywhere, a tenant key only for its own tenant, reporters never (403)."""
    service.authorize(key, action="write", tenant_id=tenant_id)


def owner_of(key: ApiKey, tenant_id: str | None = None) -> str:
    """Who a budget made with ``key`` for ``tenant_id`` belongs to: the tenant's own key
    makes a tenant's budget, the key of a team above it a team's cap; any other key
    (an admin's) an operator's cap."""
    if key.role != "tenant":
        return "operator"
    return "tenant" if tenant_id in (None, key.tenant_id) else "team"


def require_owner(key: ApiKey, budget: Budget) -> None:
    """A tenant key changes or removes only the budgets set at its own level: the
    tenant's own with its own key, a team's cap with a key of a node above the tenant.
    An operator's cap, or a cap from above, is 403: the tenant cannot loosen it (it may
    add stricter budgets of its own)."""
    if key.role != "tenant":
        return
    own = budget.tenant_id == key.tenant_id
    if budget.owner == "operator":
        raise PermissionDeniedError(
            f"budget {budget.id} was set by the operator: a tenant key cannot change or remove it "
            "(a tenant may add stricter budgets of its own)"
        )
    if budget.owner == "team" and own:
        raise PermissionDeniedError(
            f"budget {budget.id} was set by a team above {budget.tenant_id}: its key cannot change or remove it "
            "(it may add stricter budgets of its own)"
        )
    if budget.owner == "tenant" and not own:
        raise PermissionDeniedError(
            f"budget {budget.id} was set by {budget.tenant_id} itself: a team's key may add stricter budgets, "
            "not change the tenant's own"
        )


def require_budget_write(service: BudgetService, key: ApiKey, tenant_id: str) -> None:
    """Budget writes: admin anywhere, a tenant key for its own tenant and (a team's or
    organisation's key) the tenants below it, reporters never (403)."""
    service.authorize(key, action="budget", tenant_id=tenant_id)


def require_read(key: ApiKey, tenant_id: str, *, kind: str, ident: str) -> None:
    """Reads of one tenant's thing: another tenant's looks absent (404), so that its
    existence does not leak."""
    if not can(key, action="read", tenant_id=tenant_id):
        raise NotFoundError(kind, ident)


def tenant_scope(key: ApiKey, tenant: str | None) -> str | None:
    """The tenant a listing is limited to (None: all), for a key and a requested tenant
    (a team's key may ask for any tenant below it)."""
    if can(key, action="read", tenant_id=None):
        return tenant
    if tenant is not None and tenant in key.below:
        return tenant
    return key.tenant_id


def loads_exact(body: bytes) -> Any:
    """The request body decoded by :func:`jobbudget.domain.jsontext.loads_exact`; every
    problem (a duplicate key included) is a :class:`json.JSONDecodeError` (a 400)."""
    try:
        return decode_exact(body)
    except ValidationError as exc:
        raise json.JSONDecodeError(str(exc), "", 0) from None


class _ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_exact(await self.body())
        return self._json


class ExactJSONRoute(APIRoute):
    """A route whose JSON body is parsed by :func:`loads_exact`, so pydantic sees
    ``Decimal`` (never ``float``) for every number."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        takes_json = self.body_field is not None

        async def handler(request: Request) -> Response:
            if takes_json:
                _require_json(request)
            return await original(_ExactJSONRequest(request.scope, request.receive))

        return handler


def _require_json(request: Request) -> None:
    """A body sent as anything but JSON is refused by name (415): ``curl -d`` sends
    ``application/x-www-form-urlencoded``, and a body without a Content-Type is not
    read as JSON either; both would otherwise read as "Input should be a valid
    dictionary"."""
    if request.headers.get("content-length") in (None, "0") and "transfer-encoding" not in request.headers:
        return  # no body: the missing body is the validation error to report
    kind = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return
    raise UnsupportedMediaTypeError(
        f"send the body as JSON with the header Content-Type: application/json (got {kind or 'nothing'})"
    )
