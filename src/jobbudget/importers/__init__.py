"""Importers for scheduler accounting files: SWF workload traces and Slurm ``sacct``.

Each parser yields, per job, a :class:`~jobbudget.ingest.ParsedJob`, a
:class:`Skipped` (a well-formed record that is not a finished job) or a
:class:`~jobbudget.ingest.LineError` (a line that cannot be read, naming the field).
"""

from .common import TENANT_SOURCES, ImportItem, Skipped
from .sacct import SacctOptions, parse_sacct, parse_slurm_duration, parse_slurm_size, parse_slurm_time
from .swf import SWF_MEMORY_UNITS, SwfOptions, parse_swf_trace

__all__ = [
    "SWF_MEMORY_UNITS",
    "TENANT_SOURCES",
    "ImportItem",
    "SacctOptions",
    "Skipped",
    "SwfOptions",
    "parse_sacct",
    "parse_slurm_duration",
    "parse_slurm_size",
    "parse_slurm_time",
    "parse_swf_trace",
]
