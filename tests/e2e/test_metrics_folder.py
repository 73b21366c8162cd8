"""``jobbudget serve --workers 2`` keeps no metrics folder behind: its own is removed
when it stops, one left by a killed server is removed at the next start, and a
``PROMETHEUS_MULTIPROC_DIR`` the operator set is used and no other made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import StartServer

PREFIX = "jobbudget-metrics-"


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_own_folder_removed_at_stop_and_a_killed_servers_at_start(start_server: StartServer, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    abandoned = tmp / f"{PREFIX}{_dead_pid()}-x1y2"  # a server killed with kill -9
    abandoned.mkdir()
    (abandoned / "counter_1.db").write_bytes(b"\0" * 16)
    someone_elses = tmp / f"{PREFIX}{os.getpid()}-live"  # a running server's: kept
    someone_elses.mkdir()
    server = start_server(workers=2, env={"TMPDIR": str(tmp), "PROMETHEUS_MULTIPROC_DIR": ""})
    with server.client() as client:
        assert client.post("/v1/check", json={"tenant_id": "m"}).status_code == 200
        assert "jobbudget_budget_checks" in client.get("/metrics").text
    folders = sorted(p.name for p in tmp.glob(f"{PREFIX}*"))
    assert abandoned.name not in folders and someone_elses.name in folders, folders
    ours = [name for name in folders if name.startswith(f"{PREFIX}{server.process.pid}-")]
    assert len(ours) == 1 and len(folders) == 2, folders
    server.stop()
    assert [p.name for p in tmp.glob(f"{PREFIX}*")] == [someone_elses.name]


def test_an_operators_folder_is_used_and_none_made(start_server: StartServer, tmp_path: Path) -> None:
    tmp, mine = tmp_path / "tmp", tmp_path / "metrics"
    tmp.mkdir()
    mine.mkdir()
    server = start_server(workers=2, env={"TMPDIR": str(tmp), "PROMETHEUS_MULTIPROC_DIR": str(mine)})
    with server.client() as client:
        assert client.post("/v1/check", json={"tenant_id": "m"}).status_code == 200
    assert list(tmp.glob(f"{PREFIX}*")) == []
    assert any(mine.glob("*.db"))  # the workers write there
    server.stop()
    assert list(tmp.glob(f"{PREFIX}*")) == []
