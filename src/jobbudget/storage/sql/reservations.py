"""Reservations on SQL: admissions that several processes share through the database
alone (``shared_state: database``).

A reservation is taken in one transaction that first locks the first shard's
``budget_spend`` row of every budget period it holds (``SELECT ... FOR UPDATE`` on
PostgreSQL, in key order so two admissions cannot deadlock; SQLite's ``BEGIN
IMMEDIATE`` serialises all writers), drops the expired holds of those periods, reads
the open holds and then the spend (every shard's), and inserts its rows only if spend
+ open holds + the estimate stays within every limit.  A job being metered concurrently is not in that spend yet, but
its own reservation is: it is settled only after the job's commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, func, select

from ...domain.money import ZERO
from ...domain.records import Reservation, SpendKey
from .bulk import spend_sums
from .engine import transaction
from .tables import budget_spend, reservations
from .types import Money

__all__ = ["ReservationsMixin"]


class ReservationsMixin:
    """The reservation methods of :class:`~jobbudget.storage.sql.store.SqlStore`."""

    engine: Engine
    dialect: str
    _insert: Any  # the dialect's insert (with ON CONFLICT), set by SqlStore

    def reserve(
        self, reservation: Reservation, *, limits: Sequence[tuple[SpendKey, Decimal | None]], now: datetime
    ) -> bool:
        ordered = sorted(limits, key=lambda item: (item[0].budget_id, item[0].period_start))
        with transaction(self.engine, write=True) as conn:
            taken = conn.execute(select(func.count()).where(reservations.c.id == reservation.id)).scalar_one()
            if taken:
                return True  # idempotent
            self._lock_periods(conn, [key for key, _ in ordered])
            held: dict[SpendKey, Decimal] = {}
            for key, limit in ordered:
                conn.execute(delete(reservations).where(self._of(key), reservations.c.expires_at <= now))
                if limit is not None:
                    held[key] = self._held(conn, key)
            # The spend is read after the holds: a job settles its hold only after its
            # spend is committed, so a hold gone by the time the holds were read is in
            # the spend read now (each statement sees what was committed before it, on
            # PostgreSQL).  Read the other way round, a job committed and settled
            # between the two reads was in neither, and one admission too many passed.
            spend = spend_sums(conn, sorted({k.budget_id for k in held}))
            for key, limit in ordered:
                if limit is not None and spend.get(key, ZERO) + held[key] + reservation.amount > limit:
                    return False
            conn.execute(
                reservations.insert(),
                [
                    {
                        "id": reservation.id,
                        "budget_id": key.budget_id,
                        "period_start": key.period_start,
                        "tenant_id": reservation.tenant_id,
                        "amount": reservation.amount,
                        "expires_at": reservation.expires_at,
                    }
                    for key in reservation.keys
                ],
            )
        return True

    def release_reservation(self, reservation_id: str, *, tenant_id: str | None = None) -> bool:
        query = delete(reservations).where(reservations.c.id == reservation_id)
        if tenant_id is not None:
            query = query.where(reservations.c.tenant_id == tenant_id)
        with transaction(self.engine, write=True) as conn:
            result = conn.execute(query)
        return bool(result.rowcount)

    def spend_totals(self, keys: Sequence[SpendKey], *, now: datetime) -> list[tuple[Decimal, Decimal]]:
        """(spend, open holds) of each period, read in one transaction."""
        if not keys:
            return []
        with transaction(self.engine) as conn:
            spend = spend_sums(conn, sorted({k.budget_id for k in keys}))
            held: dict[SpendKey, Decimal] = {}
            query = (
                select(
                    reservations.c.budget_id,
                    reservations.c.period_start,
                    func.sum(reservations.c.amount, type_=Money),
                )
                .where(
                    reservations.c.budget_id.in_(sorted({k.budget_id for k in keys})),
                    reservations.c.expires_at > now,
                )
                .group_by(reservations.c.budget_id, reservations.c.period_start)
            )
            for budget_id, start, total in conn.execute(query):
                held[SpendKey(budget_id, start)] = total or ZERO
        return [(spend.get(k, ZERO), held.get(k, ZERO)) for k in keys]

    def count_reservations(self, *, now: datetime) -> int:
        with transaction(self.engine) as conn:
            query = select(func.count(func.distinct(reservations.c.id))).where(reservations.c.expires_at > now)
            return int(conn.execute(query).scalar_one())

    def expire_reservations(self, *, now: datetime) -> int:
        with transaction(self.engine, write=True) as conn:
            return int(conn.execute(delete(reservations).where(reservations.c.expires_at <= now)).rowcount)

    # -- internals ------------------------------------------------------------------
    @staticmethod
    def _of(key: SpendKey) -> ColumnElement[bool]:
        return and_(reservations.c.budget_id == key.budget_id, reservations.c.period_start == key.period_start)

    def _held(self, conn: Connection, key: SpendKey) -> Decimal:
        query = select(func.sum(reservations.c.amount, type_=Money)).where(self._of(key))
        return conn.execute(query).scalar_one() or ZERO

    def _lock_periods(self, conn: Connection, keys: Sequence[SpendKey]) -> None:
        """Make sure each period has its first shard's row and lock those rows in order:
        every admission of a period takes that lock (SQLite: the write lock)."""
        insert = self._insert(budget_spend).on_conflict_do_nothing(
            index_elements=["budget_id", "period_start", "shard"]
        )
        conn.execute(
            insert,
            [
                {"budget_id": k.budget_id, "period_start": k.period_start, "spend": ZERO, "jobs": 0, "shard": 0}
                for k in keys
            ],
        )
        if self.dialect == "postgresql":
            for key in keys:
                conn.execute(
                    select(budget_spend.c.shard)
                    .where(
                        budget_spend.c.budget_id == key.budget_id,
                        budget_spend.c.period_start == key.period_start,
                        budget_spend.c.shard == 0,
                    )
                    .with_for_update()
                )
