"""The Celery app the integration tests run in a real worker (``celery -A
integrations.celery_app worker``).  Configured by environment variables:
``JOBBUDGET_IT_BROKER`` (redis URL), ``JOBBUDGET_IT_DB`` (the shared database URL)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from integrations.workload import run_workload
from jobbudget.config import Config
from jobbudget.integrations.celery import install
from jobbudget.service import BudgetService

BROKER = os.environ.get("JOBBUDGET_IT_BROKER", "redis://127.0.0.1:6379/15")
PREFIX = os.environ.get("JOBBUDGET_IT_PREFIX", "jbit:")
app = Celery("jobbudget_it", broker=BROKER, backend=BROKER)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_default_queue=os.environ.get("JOBBUDGET_IT_QUEUE", "jobs"),
    broker_transport_options={"global_keyprefix": PREFIX},
    result_backend_transport_options={"global_keyprefix": PREFIX},
)


def _service() -> BudgetService:
    return BudgetService(Config(database_url=os.environ["JOBBUDGET_IT_DB"], cost_model="seed"))


budget = install(app, _service, tenant_from="tenant_id")


@app.task(name="it.work", autoretry_for=(RuntimeError,), max_retries=3, default_retry_delay=0)
def work(marker: str, cpu: float = 0.0, mb: int = 0, hold: float = 0.0, fail: bool = False, **_: Any) -> str:
    run_workload(marker, cpu=cpu, mb=mb, hold=hold)
    if fail:
        raise RuntimeError("asked to fail")
    return marker
