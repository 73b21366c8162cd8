"""``GET /v1/whoami``: what the request's key is and may do (the dashboard asks once,
at sign-in, to know which screens and controls to show; the API enforces the same
rules on every request whatever a client shows)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..domain.apikeys import can
from .deps import ExactJSONRoute, KeyDep, ServiceDep

__all__ = ["WhoAmI", "router"]

router = APIRouter(prefix="/v1", route_class=ExactJSONRoute)


class WhoAmI(BaseModel):
    id: str = Field(description="The key's id (not its secret).")
    name: str
    role: str = Field(description="admin, tenant or reporter")
    tenant_id: str | None = Field(description="The tenant (or tree node) the key is bound to; null: every tenant.")
    below: list[str] = Field(description="The tenants below the key's node in the organisation tree.")
    can_write: bool = Field(description="May change budgets and acknowledge alerts (not a reporter key).")
    can_admin: bool = Field(description="An admin key: every tenant, the cost model, the tree, refunds.")
    now: datetime = Field(description="The server's clock (with `serve --at`, the instant it runs from, moving on).")


@router.get("/whoami", tags=["health"], summary="The API key of the request and what it may do")
def whoami(service: ServiceDep, key: KeyDep) -> WhoAmI:
    return WhoAmI(
        id=key.id,
        name=key.name,
        role=key.role,
        tenant_id=key.tenant_id,
        below=sorted(key.below),
        can_write=key.role != "reporter",
        can_admin=can(key, action="admin", tenant_id=None),
        now=service.now(),
    )
