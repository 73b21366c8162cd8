"""Integrations with job queues and other code: :func:`meter` (any block of code),
``jobbudget.integrations.celery``, ``jobbudget.integrations.rq`` and
:class:`BudgetAwareRateLimiter`.  The Celery and RQ modules import their queue
library, so they are not imported here."""

from __future__ import annotations

from .meter import BudgetBlocked, meter
from .ratelimit import BudgetAwareRateLimiter, Pacer, RateDecision
from .resources import ResourceMeter, Usage

__all__ = ["BudgetAwareRateLimiter", "BudgetBlocked", "Pacer", "RateDecision", "ResourceMeter", "Usage", "meter"]
