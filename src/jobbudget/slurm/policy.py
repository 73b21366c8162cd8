"""How a Slurm cluster's names map to jobbudget's, and what a throttle becomes in
Slurm's terms (the ``slurm`` section of the configuration)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from ..domain.errors import ValidationError

__all__ = ["THROTTLE_MODES", "SlurmPolicy"]

#: ``nice``: a lower priority (Slurm's nice value); ``hold``: the job is held until an
#: operator releases it; ``qos:NAME``: the job runs in a slower QOS.
THROTTLE_MODES = ("nice", "hold", "qos:NAME")


@dataclass(frozen=True, slots=True)
class SlurmPolicy:
    #: which Slurm name is the tenant: ``account`` (the default) or ``user``
    tenant_from: str = "account"
    #: Slurm account (or user) → tenant id; a name not listed is its own tenant
    tenants: Mapping[str, str] = field(default_factory=dict)
    #: partition → queue; a partition not listed is its own queue
    queues: Mapping[str, str] = field(default_factory=dict)
    #: a job's id in jobbudget is ``PREFIX-<Slurm's raw job id>``
    job_id_prefix: str = "slurm"
    #: jobs in these QOS are emergencies (priority 10: they may use a budget's bypass)
    emergency_qos: tuple[str, ...] = ()
    #: the time a job is priced for when neither it nor its partition has a limit
    default_time_limit: timedelta = timedelta(hours=1)
    #: memory a job that asks for none is given per CPU (the cluster's DefMemPerCPU)
    default_memory_per_cpu_mb: int = 0
    #: how long a reservation waits for a pending job, beyond the job's time limit
    pending_allowance: timedelta = timedelta(days=1)
    #: what a throttled job becomes: ``nice``, ``hold`` or ``qos:NAME``
    throttle: str = "nice"
    #: the nice value of a throttled job at throttle factor 0 (scaled by 1 - factor)
    throttle_nice: int = 10_000

    def __post_init__(self) -> None:
        if self.tenant_from not in ("account", "user"):
            raise ValidationError("slurm.tenant_from", self.tenant_from, "must be account or user")
        if not (self.throttle in ("nice", "hold") or (self.throttle.startswith("qos:") and self.throttle[4:])):
            raise ValidationError(
                "slurm.throttle", self.throttle, "must be nice, hold or qos:NAME (a QOS of the cluster)"
            )
        if not 1 <= self.throttle_nice <= 2_147_483_645:
            raise ValidationError("slurm.throttle_nice", self.throttle_nice, "must lie between 1 and 2147483645")
        if self.default_time_limit <= timedelta(0):
            raise ValidationError("slurm.default_time_limit", self.default_time_limit, "must be positive")
        if self.pending_allowance < timedelta(0):
            raise ValidationError("slurm.pending_allowance", self.pending_allowance, "must not be negative")

    def tenant(self, account: str, user: str) -> tuple[str, str]:
        """(the tenant, the Slurm field it came from) of a job; a job without an
        account (a cluster without associations) is its user's."""
        name, source = (account, "account") if self.tenant_from == "account" and account else (user, "user")
        return self.tenants.get(name, name), source

    def queue(self, partition: str) -> str:
        return self.queues.get(partition, partition)

    def job_id(self, slurm_job_id: int | str) -> str:
        return f"{self.job_id_prefix}-{slurm_job_id}"

    def priority(self, qos: str) -> int:
        """An emergency QOS is priority 10, any other job 5 (the API's default)."""
        return 10 if qos and qos in self.emergency_qos else 5

    def throttled(self, factor: float) -> dict[str, str]:
        """What ``job_submit.lua`` sets on a throttled job running at ``factor`` of its
        capacity: ``{"nice": "5000"}``, ``{"hold": "1"}`` or ``{"qos": "slow"}``."""
        if self.throttle == "hold":
            return {"hold": "1"}
        if self.throttle.startswith("qos:"):
            return {"qos": self.throttle[4:]}
        return {"nice": str(max(1, round(self.throttle_nice * (1.0 - factor))))}
