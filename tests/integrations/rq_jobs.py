"""The worker class and job functions the RQ integration tests run in a real ``rq
worker`` (``-w integrations.rq_jobs.BudgetWorker``); the shared database URL comes
from ``JOBBUDGET_IT_DB``."""

from __future__ import annotations

import os

from integrations.workload import run_workload
from jobbudget.config import Config
from jobbudget.integrations.rq import budget_worker_class
from jobbudget.service import BudgetService


def _service() -> BudgetService:
    return BudgetService(Config(database_url=os.environ["JOBBUDGET_IT_DB"], cost_model="seed"))


BudgetWorker = budget_worker_class(_service)


def work(marker: str, cpu: float = 0.0, mb: int = 0, hold: float = 0.0, fail: bool = False) -> str:
    run_workload(marker, cpu=cpu, mb=mb, hold=hold)
    if fail:
        raise RuntimeError("asked to fail")
    return marker
