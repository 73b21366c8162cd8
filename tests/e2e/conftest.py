"""End-to-end tier: every test here talks to a real ``jobbudget serve`` process (the
installed console script) over a real port with real client libraries.

Fixtures: ``live_server``, one server for the module (tests share it, each with its own
tenants), and ``start_server``, which starts servers with any options
(:func:`e2e.server.start_server`: ``workers``, ``config``, ``env``, ``args``) and kills
them after the test.  A failed test's report shows the log of every server it used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import server as live
from .server import LiveServer

SERVERS = pytest.StashKey[list[LiveServer]]()
StartServer = Callable[..., LiveServer]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        servers = list(item.stash.get(SERVERS, []))
        servers += [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, LiveServer)]
        for server in dict.fromkeys(servers):  # LiveServer hashes by identity
            report.sections.append((f"jobbudget serve log ({server.url}, {server.log_path})", server.log()))
    return report


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = live.start_server(tmp_path_factory.mktemp("live-server"))
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def start_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    started: list[LiveServer] = []
    request.node.stash[SERVERS] = started

    def start(**options: Any) -> LiveServer:
        server = live.start_server(tmp_path_factory.mktemp("server"), **options)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()
