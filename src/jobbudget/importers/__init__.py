"""Every reader of job files: JSON Lines and CSV of job metrics, SWF workload traces
and Slurm ``sacct`` exports, one parser per format, plus :func:`open_input` (plain or
compressed files, or standard input).

Each parser yields, per record, a :class:`ParsedJob`, a :class:`Skipped` (a
well-formed record that is not a finished job) or a :class:`LineError` (a line that
cannot be read, naming the field).
"""

from .common import TENANT_SOURCES, ImportItem, LineError, ParsedJob, Skipped
from .files import InputFile, open_input
from .records import FIELDS, NUMBER_FIELDS, REQUIRED_FIELDS, metrics_from_mapping, parse_csv, parse_jsonl
from .sacct import KNOWN_COLUMNS, SacctOptions, parse_sacct, sacct_columns
from .slurm_values import parse_slurm_duration, parse_slurm_size, parse_slurm_time, parse_tres
from .swf import SWF_MEMORY_UNITS, SwfOptions, parse_swf_trace

__all__ = [
    "FIELDS",
    "KNOWN_COLUMNS",
    "NUMBER_FIELDS",
    "REQUIRED_FIELDS",
    "SWF_MEMORY_UNITS",
    "TENANT_SOURCES",
    "ImportItem",
    "InputFile",
    "LineError",
    "ParsedJob",
    "SacctOptions",
    "Skipped",
    "SwfOptions",
    "metrics_from_mapping",
    "open_input",
    "parse_csv",
    "parse_jsonl",
    "parse_sacct",
    "parse_slurm_duration",
    "parse_slurm_size",
    "parse_slurm_time",
    "parse_swf_trace",
    "parse_tres",
    "sacct_columns",
]
