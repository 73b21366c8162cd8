"""The dispatcher: works off the delivery outbox.

Each pass first sends the digests of channels whose rate limit has room again, then
claims due deliveries (with a lease, so a dispatcher that dies mid-send gives them
back) and sends each one:

* sent → ``sent``;
* a retryable failure (timeout, connection error, HTTP 5xx or 429, SMTP 4xx) →
  ``pending`` again after an exponential backoff with jitter (1 s, 2 s, 4 s, ... at
  most 15 min; "equal jitter": half fixed, half random), or after the receiver's
  ``Retry-After`` when that is longer; after the channel's ``retry_count`` retries
  (metadata, default 5) → ``failed`` (the dead letter: visible in ``list_alerts``,
  re-sendable with ``resend_delivery``);
* a permanent failure (other 4xx, SMTP 5xx, bad credentials) → ``failed`` at once;
* over the channel's rate limit (``rate_limit_per_hour`` metadata, default
  ``Config.notification_rate_limit_per_hour``, 20) → ``held``; held events go out
  later as one digest message.

Every message carries the event id (or the digest id), so a receiver can drop the
duplicate that a crash between sending and recording may cause.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..background import PeriodicTask, PeriodicWorker
from ..config import Config
from ..domain.alerts import PendingDelivery
from ..domain.budget import NotificationChannel
from ..ports import Store
from .base import DeliveryError, Sender, close_sender, metadata_value, redact, retry_count_of, sender_for
from .messages import digest_id

__all__ = ["DispatchResult", "Dispatcher", "backoff_seconds"]

log = logging.getLogger("jobbudget.notify")
BACKOFF_BASE = 1.0
BACKOFF_CAP = 900.0
HOUR = timedelta(hours=1)
BATCH = 100
#: How long one background pass may send for; stopping waits this long, and a bit.
PASS_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class DispatchResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    held: int = 0
    digests: int = 0

    def __add__(self, other: DispatchResult) -> DispatchResult:
        return DispatchResult(
            self.sent + other.sent,
            self.retrying + other.retrying,
            self.failed + other.failed,
            self.held + other.held,
            self.digests + other.digests,
        )

    @property
    def worked(self) -> bool:
        return bool(self.sent or self.retrying or self.failed or self.held or self.digests)


def backoff_seconds(attempt: int, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, with
    equal jitter so that many failed deliveries do not retry in lock-step."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * float(2 ** min(max(0, attempt - 1), 30)))
    return delay / 2 + rng.uniform(0, delay / 2)


class Dispatcher:
    """Sends what the outbox holds.  Thread-safe to run from one thread at a time per
    process; several processes may run dispatchers on one database."""

    def __init__(
        self,
        *,
        store: Store,
        config: Config,
        clock: Callable[[], datetime],
        senders: Mapping[str, Sender] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._senders: dict[str, Sender] = dict(senders or {})
        self._rng = rng or random.Random()

    def close(self) -> None:
        for sender in self._senders.values():
            close_sender(sender)
        self._senders.clear()

    def _sender(self, channel_type: str) -> Sender:
        sender = self._senders.get(channel_type)
        if sender is None:
            sender = self._senders[channel_type] = sender_for(channel_type, self._config)
        return sender

    def _limit(self, channel: NotificationChannel) -> int:
        value = metadata_value(channel, "rate_limit_per_hour")
        if value is not None and value.strip().isdigit() and int(value) > 0:
            return int(value)
        return self._config.notification_rate_limit_per_hour

    def in_background(self, *, lock: threading.Lock, wake: threading.Event, every: float = 1.0) -> PeriodicWorker:
        """Deliver from a daemon thread (started here): a pass every ``every`` seconds,
        and at once when ``wake`` is set; each pass holds ``lock`` (which a caller that
        dispatches in the foreground takes too).  ``stop()`` the worker, then
        :meth:`close` the dispatcher."""

        def dispatch() -> None:
            with lock:
                self.run(timeout=PASS_SECONDS)

        task = PeriodicTask(dispatch, every, wake=wake, name="notification dispatch")
        worker = PeriodicWorker([task], name="jobbudget-notify", join_timeout=PASS_SECONDS + 5)
        worker.start()
        return worker

    def run(self, *, timeout: float) -> DispatchResult:
        """Passes until nothing is due or ``timeout`` seconds have gone."""
        deadline = time.monotonic() + timeout
        total = DispatchResult()
        while time.monotonic() < deadline:
            result = self.run_once(deadline=deadline)
            total += result
            if not result.worked:
                break
        return total

    def run_once(self, *, deadline: float | None = None) -> DispatchResult:
        result = self._send_digests()
        now = self._clock()
        lease = max(60.0, 2 * self._max_timeout() + 30)
        lease_until = now + timedelta(seconds=lease)
        claimed = self._store.claim_deliveries(now=now, lease_until=lease_until, limit=BATCH)
        last_start = lease_until - timedelta(seconds=self._max_timeout())
        for position, delivery in enumerate(claimed):
            # Out of time, or a send started now could outlast the lease (after which
            # another dispatcher may claim the same delivery and send it too).
            if (deadline is not None and time.monotonic() >= deadline) or self._clock() > last_start:
                for rest in claimed[position:]:  # give back, while the lease holds, what this pass will not send
                    self._store.finish_delivery(rest.id, status="pending", attempts=rest.attempts, next_attempt_at=now)
                break
            result += self._deliver(delivery)
        return result

    def _max_timeout(self) -> float:
        return max(self._config.smtp_timeout, 30.0)

    def _deliver(self, delivery: PendingDelivery) -> DispatchResult:
        channel, now = delivery.channel, self._clock()
        if self._store.count_sent(channel_key=delivery.channel_key, since=now - HOUR) >= self._limit(channel):
            self._store.finish_delivery(delivery.id, status="held", attempts=delivery.attempts)
            log.info("alert %s held for %s: rate limit", delivery.event.id, channel.type)
            return DispatchResult(held=1)
        attempts = delivery.attempts + 1
        try:
            self._sender(channel.type).send(channel, [delivery.event])
        except DeliveryError as exc:
            return self._failed(delivery, attempts, exc.retryable, exc.retry_after, exc.message)
        except Exception as exc:  # an unexpected failure must not lose the delivery
            return self._failed(delivery, attempts, True, None, redact(f"{type(exc).__name__}: {exc}", channel))
        self._store.finish_delivery(delivery.id, status="sent", attempts=attempts, sent_at=self._clock())
        log.info("alert %s delivered to %s after %d attempt(s)", delivery.event.id, channel.type, attempts)
        return DispatchResult(sent=1)

    def _failed(
        self, delivery: PendingDelivery, attempts: int, retryable: bool, retry_after: float | None, error: str
    ) -> DispatchResult:
        channel = delivery.channel
        error = redact(error, channel)[:1000]
        if retryable and attempts <= retry_count_of(channel):
            delay = max(backoff_seconds(attempts, self._rng), retry_after or 0.0)
            self._store.finish_delivery(
                delivery.id,
                status="pending",
                attempts=attempts,
                next_attempt_at=self._clock() + timedelta(seconds=delay),
                last_error=error,
            )
            log.warning("alert %s to %s failed (%s); retry in %.1f s", delivery.event.id, channel.type, error, delay)
            return DispatchResult(retrying=1)
        self._store.finish_delivery(delivery.id, status="failed", attempts=attempts, last_error=error)
        log.error(
            "alert %s to %s failed for good after %d attempt(s): %s", delivery.event.id, channel.type, attempts, error
        )
        return DispatchResult(failed=1)

    def _send_digests(self) -> DispatchResult:
        groups: dict[str, list[PendingDelivery]] = defaultdict(list)
        for delivery in self._store.held_deliveries():
            groups[delivery.channel_key].append(delivery)
        result = DispatchResult()
        now = self._clock()
        for key, held in groups.items():
            channel = held[0].channel
            if self._store.count_sent(channel_key=key, since=now - HOUR) >= self._limit(channel):
                continue
            events = [d.event for d in held]
            try:
                self._sender(channel.type).send(channel, events, digest=True)
            except DeliveryError as exc:
                if exc.retryable:
                    continue  # still held: the next pass tries again
                for d in held:
                    self._store.finish_delivery(
                        d.id, status="failed", attempts=d.attempts + 1, last_error=redact(exc.message, channel)
                    )
                result += DispatchResult(failed=len(held))
                continue
            except Exception as exc:
                log.warning("digest to %s failed: %s", channel.type, redact(str(exc), channel))
                continue
            ident, sent_at = digest_id(events), self._clock()
            for d in held:
                self._store.finish_delivery(
                    d.id, status="digested", attempts=d.attempts + 1, sent_at=sent_at, digest_id=ident
                )
            log.info("digest of %d alerts delivered to %s", len(held), channel.type)
            result += DispatchResult(digests=1, sent=len(held))
        return result
