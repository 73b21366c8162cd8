"""``jobbudget slurm install | print | backfill``: put jobbudget in front of ``sbatch``
and behind job completion on a Slurm controller (docs/slurm.md)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import __version__
from ..domain.errors import ValidationError
from ..slurm.records import BACKFILL_COLUMNS
from ..slurm.scripts import ScriptSettings, job_submit_lua, jobcomp_script, slurm_conf_lines
from .common import JsonOption, cli_errors, emit_json, out_console

__all__ = ["slurm_app"]

slurm_app = typer.Typer(
    help="Slurm: budgets enforced at sbatch (job_submit.lua), jobs metered when they end (jobcomp script).",
    no_args_is_help=True,
)
_MARK = "-- jobbudget's job_submit.lua"
UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="JOBBUDGET_URL", help="jobbudget serve, as the Slurm controller reaches it."),
]
KeyFileOption = Annotated[
    Path,
    typer.Option(
        "--key-file",
        help='A file holding "Authorization: Bearer <admin key>", readable by SlurmUser only.',
    ),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds slurmctld waits for jobbudget at submission (at most 1).")
]
FailOption = Annotated[
    str,
    typer.Option(
        "--fail",
        help="When jobbudget does not answer: open (accept jobs unchecked, logged) or closed (refuse them).",
    ),
]
_OPTIONS = {"url": "--url", "timeout": "--timeout", "fail_mode": "--fail", "key_file": "--key-file"}


def _settings(url: str, key_file: Path, timeout: float, fail: str) -> ScriptSettings:
    return ScriptSettings(
        url=url, key_file=str(key_file.absolute()), timeout=timeout, fail_mode=fail, version=__version__
    )


@slurm_app.command("print")
def print_file(
    what: Annotated[str, typer.Argument(help="job-submit (the Lua plugin), jobcomp (the script) or conf.")],
    url: UrlOption = "http://127.0.0.1:8000",
    key_file: KeyFileOption = Path("/etc/slurm/jobbudget.key"),
    timeout: TimeoutOption = 1.0,
    fail: FailOption = "open",
    directory: Annotated[Path, typer.Option("--dir", help="Where the files go (for conf).")] = Path("/etc/slurm"),
) -> None:
    """Print one of the files `install` writes, to read or to install by hand."""
    with cli_errors(_OPTIONS):
        settings = _settings(url, key_file, timeout, fail)
        texts = {
            "job-submit": lambda: job_submit_lua(settings),
            "jobcomp": lambda: jobcomp_script(settings),
            "conf": lambda: slurm_conf_lines(str(directory)),
        }
        if what not in texts:
            raise ValidationError("what", what, "must be job-submit, jobcomp or conf")
        typer.echo(texts[what](), nl=False)


@slurm_app.command("install")
def install(
    url: UrlOption,
    directory: Annotated[Path, typer.Option("--dir", help="Slurm's configuration directory.")] = Path("/etc/slurm"),
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="Default: DIR/jobbudget.key. Written (mode 600) when --key is given."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", envvar="JOBBUDGET_API_KEY", help="An admin API key to write into the key file."),
    ] = None,
    timeout: TimeoutOption = 1.0,
    fail: FailOption = "open",
    force: Annotated[bool, typer.Option("--force", help="Replace a job_submit.lua that is not jobbudget's.")] = False,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="Who may read the key file: SlurmUser (default: scontrol show config's)."),
    ] = None,
) -> None:
    """Write DIR/job_submit.lua and DIR/jobbudget-jobcomp.sh (and the key file), print
    what slurm.conf needs and check the key with the server (exit 1 if it refuses it).
    slurmctld reads job_submit.lua again on the next submission; adding JobCompType to
    slurm.conf needs a restart of slurmctld."""
    with cli_errors(_OPTIONS):
        key_path = key_file or directory / "jobbudget.key"
        settings = _settings(url, key_path, timeout, fail)
        plugin = directory / "job_submit.lua"
        if plugin.exists() and not force and not plugin.read_text(encoding="utf-8", errors="replace").startswith(_MARK):
            raise ValidationError(
                "--dir",
                str(plugin),
                "holds a job_submit.lua that is not jobbudget's: merge ours by hand (jobbudget "
                "slurm print job-submit) or replace it with --force",
            )
        directory.mkdir(parents=True, exist_ok=True)
        if key is not None:
            _write(key_path, f"Authorization: Bearer {key.strip()}\n", 0o600)
        elif not key_path.exists():
            raise ValidationError("--key-file", str(key_path), "does not exist: give --key (or $JOBBUDGET_API_KEY)")
        user = owner or _slurm_user()
        if user:  # slurmctld runs the plugin and the script as SlurmUser: it must read the key
            _own(key_path, user)
        _write(plugin, job_submit_lua(settings), 0o644)
        _write(directory / "jobbudget-jobcomp.sh", jobcomp_script(settings), 0o755)
        console = out_console()
        console.print(f"Wrote {plugin}, {directory / 'jobbudget-jobcomp.sh'} and uses {key_path}.", markup=False)
        console.print("slurm.conf needs (then restart slurmctld: a new JobCompType needs a restart):", markup=False)
        console.print(slurm_conf_lines(str(directory)), markup=False, end="")
        checked, fine = _key_check(settings.base, key_path)
        console.print(checked, markup=False)
        if not fine:  # written, but every job would go by the failure mode: say so by the exit status
            raise typer.Exit(1)


def _slurm_user() -> str | None:
    """SlurmUser from the running controller's configuration (None without scontrol)."""
    try:
        done = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "SlurmUser":
            return value.strip().split("(", 1)[0] or None
    return None


def _own(path: Path, user: str) -> None:
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ValidationError("--owner", user, "is not a user of this machine (SlurmUser)") from None
    if os.geteuid() == 0:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    elif os.stat(path).st_uid != entry.pw_uid:
        raise ValidationError("--owner", user, f"must own {path}: run install as root, or chown it")


def _key_check(url: str, key_file: Path) -> tuple[str, bool]:
    """Whether the server takes the key as an admin key, and whether that is fine (a
    server not running yet is: it may start after the files are installed)."""
    import httpx

    headers = _key_header(key_file)
    try:
        response = httpx.get(f"{url}/v1/whoami", headers=headers, timeout=1.5)
    except httpx.HTTPError as exc:
        return f"Warning: could not reach {url} to check the key ({exc}); until it answers, jobs go by --fail.", True
    if response.status_code != 200:
        return f"Error: {url} refused the key (HTTP {response.status_code}): every job would go by --fail.", False
    if not response.json().get("can_admin"):
        return f"Error: the key is not an admin key; {url} would refuse the controller's calls (HTTP 403).", False
    return f"Checked: {url} takes the key as an admin key.", True


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` whole (a new file moved into place: slurmctld never reads half)."""
    part = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(part, mode)
    os.replace(part, path)


@slurm_app.command("backfill")
def backfill(
    url: UrlOption,
    key_file: KeyFileOption = Path("/etc/slurm/jobbudget.key"),
    since: Annotated[str, typer.Option("--since", help="sacct --starttime: 2026-12-01T00:00 or now-2days.")] = (
        "now-7days"
    ),
    until: Annotated[str, typer.Option("--until", help="sacct --endtime.")] = "now",
    sacct: Annotated[str, typer.Option("--sacct", help="The sacct command.")] = "sacct",
    chunk: Annotated[int, typer.Option("--chunk", min=1, max=10_000, help="Jobs sent per request.")] = 2000,
    json_output: JsonOption = False,
) -> None:
    """Meter the jobs sacct knows that jobbudget missed (it was down, the jobcomp
    script failed).  Jobs metered before are duplicates: run it as often as you like."""
    import httpx

    with cli_errors(_OPTIONS):
        for name, value in (("--since", since), ("--until", until)):
            if not value or any(c.isspace() for c in value):
                raise ValidationError(name, value, "must be a time sacct reads, such as 2026-12-01T00:00 or now-2days")
        headers = _key_header(key_file)
        command = [sacct, "-a", "-X", "--parsable2", "-o", BACKFILL_COLUMNS, "-S", since, "-E", until]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ValidationError("--sacct", sacct, f"could not run ({exc})") from None
        if done.returncode != 0:
            raise ValidationError("sacct", " ".join(command), f"failed: {done.stderr.strip() or done.returncode}")
        lines = done.stdout.splitlines()
        totals: dict[str, Any] = {"stored": 0, "duplicates": 0, "released": 0, "pending": 0, "rejected": []}
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60) as client:
            for body in _chunks(lines, chunk):
                response = client.post("/v1/slurm/sacct", content=body, headers={"Content-Type": "text/plain"})
                if response.status_code in (401, 403):
                    raise ValidationError("--key-file", str(key_file), f"was refused by {url} (HTTP "
                                          f"{response.status_code}): it needs an admin key")  # fmt: skip
                if response.status_code != 200:
                    raise ValidationError("--url", url, f"answered HTTP {response.status_code}: {response.text[:300]}")
                part = response.json()
                totals["stored"] += part["stored"]
                totals["duplicates"] += part["duplicates"]
                totals["released"] += len(part["released"])
                totals["pending"] += len(part["pending"])
                totals["rejected"].extend(part["rejected"])
        if json_output:
            emit_json(totals)
            return
        out_console().print(
            f"{len(lines) - 1 if lines else 0} jobs read from sacct: {totals['stored']} metered, "
            f"{totals['duplicates']} metered before, {totals['released']} never ran (holds released), "
            f"{totals['pending']} not ended, {len(totals['rejected'])} refused",
            markup=False,
        )
        for item in totals["rejected"]:
            out_console().print(f"  job {item['slurm_job_id']}: {item['message']}", markup=False)


def _key_header(path: Path) -> dict[str, str]:
    try:
        line = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValidationError("--key-file", str(path), f"cannot be read ({exc.strerror})") from None
    name, _, value = line.partition(":")
    if name.strip().lower() != "authorization" or not value.strip():
        raise ValidationError("--key-file", str(path), 'must hold one line "Authorization: Bearer <key>"')
    return {"Authorization": value.strip()}


def _chunks(lines: list[str], size: int) -> Iterator[str]:
    """The header and at most ``size`` jobs per piece (-X: one line per job)."""
    if len(lines) < 2:
        return
    header, rows = lines[0], lines[1:]
    for start in range(0, len(rows), size):
        yield "\n".join([header, *rows[start : start + size]]) + "\n"
