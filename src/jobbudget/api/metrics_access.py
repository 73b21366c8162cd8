"""Who may read ``/metrics``.  It shows every tenant's name and spend, so it can be
closed: with ``metrics_require_key: true``, or once a ``metrics_token`` is set, a
scrape needs ``Authorization: Bearer`` with the metrics token, an admin key or a
reporter key bound to no tenant (keys that may read every tenant).  Without either
setting ``/metrics`` stays open, as before (keep it internal then)."""

from __future__ import annotations

import hmac

from fastapi.responses import JSONResponse
from starlette.requests import Request

from ..domain.apikeys import can
from ..domain.errors import AuthenticationError, JobBudgetError
from ..service import BudgetService
from .errors import RETRY_AFTER_SECONDS, error_body

__all__ = ["metrics_refusal"]


def _refuse(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers or None)


def metrics_refusal(request: Request) -> JSONResponse | None:
    """None when ``request`` may read the metrics, else the answer (401, 403, 503).
    May read the database (a key not looked up lately): call it off the event loop."""
    service: BudgetService = request.app.state.service
    config = service.config
    token = config.metrics_token
    if not config.metrics_require_key and token is None:
        return None
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return _refuse(
            401,
            "UNAUTHENTICATED",
            "metrics need a key: Authorization: Bearer <metrics token, admin or reporter key>",
            **{"WWW-Authenticate": "Bearer"},
        )
    if token is not None and hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
        return None
    try:
        key = service.authenticate(presented)
    except AuthenticationError as exc:
        return _refuse(401, "UNAUTHENTICATED", str(exc), **{"WWW-Authenticate": "Bearer"})
    except JobBudgetError:
        return _refuse(
            503, "STORAGE_UNAVAILABLE", "the key cannot be checked now", **{"Retry-After": RETRY_AFTER_SECONDS}
        )
    if not can(key, action="read", tenant_id=None):
        return _refuse(403, "FORBIDDEN", f"a {key.role} key of one tenant may not read every tenant's metrics")
    return None
