"""The two files an operator installs on the Slurm controller (``jobbudget slurm
install`` writes them, ``jobbudget slurm print`` shows them): ``job_submit.lua``
(admission at ``sbatch``) and the jobcomp script (metering at job end), with the
server's address, the key file, the timeout and the failure mode written in."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from importlib.resources import files
from urllib.parse import urlsplit

from ..domain.errors import ValidationError

__all__ = ["FAIL_MODES", "ScriptSettings", "job_submit_lua", "jobcomp_script", "slurm_conf_lines"]

FAIL_MODES = ("open", "closed")


@dataclass(frozen=True, slots=True)
class ScriptSettings:
    #: where ``jobbudget serve`` listens, as the controller reaches it
    url: str
    #: a file holding ``Authorization: Bearer <admin key>`` (mode 600, owned by SlurmUser)
    key_file: str = "/etc/slurm/jobbudget.key"
    #: the longest slurmctld waits for an answer at submission, in seconds (at most 1)
    timeout: float = 1.0
    #: ``open``: accept jobs unchecked when jobbudget does not answer; ``closed``: refuse them
    fail_mode: str = "open"
    curl: str = "/usr/bin/curl"
    squeue: str = "/usr/bin/squeue"
    scontrol: str = "/usr/bin/scontrol"
    #: the package version written into the files' first lines ("" for none)
    version: str = ""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValidationError("url", self.url, "must be the server's address, such as http://jobbudget:8000")
        if not 0.05 <= self.timeout <= 1.0:
            raise ValidationError("timeout", self.timeout, "must lie between 0.05 and 1 second: slurmctld waits for it")
        if self.fail_mode not in FAIL_MODES:
            raise ValidationError("fail_mode", self.fail_mode, "must be open or closed")
        for name in ("key_file", "curl", "squeue", "scontrol"):
            value = getattr(self, name)
            if not value.startswith("/") or any(c in value for c in "\n\r\0"):
                raise ValidationError(name, value, "must be an absolute path")

    @property
    def base(self) -> str:
        return self.url.rstrip("/")


def _lua_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _template(name: str) -> str:
    return files("jobbudget.slurm").joinpath(name).read_text(encoding="utf-8")


def job_submit_lua(settings: ScriptSettings) -> str:
    return (
        _template("job_submit.lua")
        .replace("@VERSION@", f" (jobbudget {settings.version})" if settings.version else "")
        .replace("@URL@", _lua_text(settings.base))
        .replace("@KEY_FILE@", _lua_text(settings.key_file))
        .replace("@TIMEOUT@", f"{settings.timeout:g}")
        .replace("@FAIL_MODE@", _lua_text(settings.fail_mode))
        .replace("@CURL@", _lua_text(shlex.quote(settings.curl)))
    )


def jobcomp_script(settings: ScriptSettings) -> str:
    return (
        _template("jobcomp.sh")
        .replace("@VERSION@", f" (jobbudget {settings.version})" if settings.version else "")
        .replace("@URL@", shlex.quote(settings.base))
        .replace("@KEY_FILE@", shlex.quote(settings.key_file))
        .replace("@SQUEUE@", shlex.quote(settings.squeue))
        .replace("@SCONTROL@", shlex.quote(settings.scontrol))
        .replace("@CURL@", shlex.quote(settings.curl))
    )


def slurm_conf_lines(directory: str) -> str:
    """What slurm.conf needs for both files (``directory``: where they were written)."""
    return (
        f"JobSubmitPlugins=lua\nJobCompType=jobcomp/script\nJobCompLoc={directory.rstrip('/')}/jobbudget-jobcomp.sh\n"
    )
