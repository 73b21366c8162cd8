"""The FastAPI application: :func:`create_app` around a service (no global state),
and :func:`app_from_env` for ``uvicorn --factory`` / ``jobbudget serve --workers N``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..config import Config
from ..metrics import CONTENT_TYPE, PrometheusMetrics
from ..service import BudgetService
from ..web import install_dashboard
from .auth import AuthFirstMiddleware
from .deps import ServiceDep, current_key
from .docs_ui import install_docs
from .errors import RETRY_AFTER_SECONDS, BodyLimitMiddleware, error_body, install_error_handlers
from .live import router as live_router
from .metrics_access import metrics_refusal
from .ratelimit import WindowLimiter
from .responses import errors
from .routes_budgets import router as budgets_router
from .routes_jobs import router as jobs_router
from .routes_platform import router as platform_router
from .routes_reports import router as reports_router
from .routes_session import router as session_router
from .routes_slurm import router as slurm_router

__all__ = ["DEFAULT_MAX_BODY_BYTES", "app_from_env", "create_app"]

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024

health = APIRouter(tags=["health"])


@health.get("/healthz", summary="The process is up (no authentication)")
async def healthz() -> dict[str, str]:
    # on the event loop (no I/O, no lock): the process answers even when every worker
    # thread is busy, e.g. with checks waiting for a period roll (see .threads)
    return {"status": "ok"}


@health.get("/readyz", summary="The database is reachable", responses=errors(503))
async def readyz(service: ServiceDep) -> JSONResponse:
    try:
        await run_in_threadpool(service.ping)
    except Exception:
        return JSONResponse(
            error_body("STORAGE_UNAVAILABLE", "the database is not reachable"),
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return JSONResponse({"status": "ready"})


@health.get(
    "/metrics",
    summary="Prometheus metrics (text format; a key only with metrics_require_key or metrics_token)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}, **errors(401, 403, 404, 503)},
)
async def metrics(request: Request) -> Response:
    refused = await run_in_threadpool(metrics_refusal, request)
    if refused is not None:
        return refused
    exported: PrometheusMetrics | None = getattr(request.app.state, "metrics", None)
    if exported is None:
        return JSONResponse(error_body("NOT_FOUND", "metrics are not enabled on this server"), status_code=404)
    body = await run_in_threadpool(exported.exposition)
    return Response(body, media_type=CONTENT_TYPE)


def create_app(
    service: BudgetService,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    metrics: PrometheusMetrics | None = None,
    **fastapi_args: Any,
) -> FastAPI:
    """The HTTP API over ``service`` (the caller owns it and closes it).  ``metrics``:
    the sink the service was built with, exported at ``/metrics``."""
    if max_body_bytes <= 0:
        raise ValueError("max_body_bytes must be positive")
    app = FastAPI(
        title="jobbudget",
        version=__version__,
        description="Exact job costs, budgets and graduated enforcement for multi-tenant job queues. "
        "Every /v1 route needs `Authorization: Bearer <API key>`; money is an exact decimal string.",
        docs_url=None,  # install_docs serves both pages with local assets
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        **fastapi_args,
    )
    install_docs(app)
    install_dashboard(app)
    app.state.service = service
    app.state.metrics = metrics
    app.state.channel_tests = WindowLimiter(service.config.channel_test_rate_limit_per_minute, what="channel tests")
    if metrics is not None:
        metrics.bind(service)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(AuthFirstMiddleware, service=service)  # outermost: no key, no body read
    app.include_router(health)
    auth = [Depends(current_key)]
    for router in (
        jobs_router,
        budgets_router,
        reports_router,
        platform_router,
        session_router,
        slurm_router,
    ):  # every /v1 route: a key, the database
        app.include_router(router, dependencies=auth, responses=errors(401, 503))
    app.include_router(live_router)  # authenticates itself (a WebSocket has no dependencies' 401)
    return app


def app_from_env() -> FastAPI:
    """An app with its own service from the configuration: ``JOBBUDGET_CONFIG`` (a YAML
    file) and ``JOBBUDGET_*`` variables.  The service is closed at shutdown."""
    path = os.environ.get("JOBBUDGET_CONFIG")
    config = Config.from_yaml(path) if path else Config()
    exported = PrometheusMetrics(max_tenants=config.metrics_max_tenants)
    service = BudgetService(config, metrics=exported).start()  # a database it cannot open: it does not serve

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    limit = int(os.environ.get("JOBBUDGET_API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    return create_app(service, max_body_bytes=limit, metrics=exported, lifespan=lifespan)
