"""Slurm: budgets enforced at ``sbatch`` and jobs metered when they end (docs/slurm.md).

- :mod:`.policy`: how Slurm's names map to jobbudget's (account or user → tenant,
  partition → queue, QOS → emergency) and what a throttle becomes in Slurm's terms.
- :mod:`.requests`: a job as ``job_submit.lua`` sees it at submission, priced for its
  whole time limit (the cost held until it ends).
- :mod:`.records`: a finished job as the jobcomp script reports it, and the lines of
  a ``sacct`` backfill, as jobs to meter.
- :mod:`.messages`: what the user reads on ``sbatch``'s standard error.
- :mod:`.scripts`: the ``job_submit.lua`` and jobcomp script the operator installs.

Nothing here does I/O: the API (``/v1/slurm/*``) and the CLI (``jobbudget slurm``)
use it."""

from __future__ import annotations
