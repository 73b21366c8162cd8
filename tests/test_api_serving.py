"""``jobbudget serve``'s uvicorn set-up (``api/serving.py``): the log filter that masks
``token`` query parameters, and the options built from the configuration (the limits
themselves are tested against the real server in ``tests/e2e/test_serve_hardening.py``)."""

from __future__ import annotations

import logging

import pytest

from jobbudget.api.serving import (
    HEADER_TIMEOUT_ENV,
    MAX_CONNECTIONS_ENV,
    RedactTokenFilter,
    export_settings,
    log_config,
    uvicorn_options,
)
from jobbudget.config import Config
from jobbudget.domain.errors import ValidationError

KEY = "jb_abcdefgh_" + "s" * 43


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (f"/v1/ws?token={KEY}", "/v1/ws?token=***"),
        (f"/v1/ws?a=1&token={KEY}&b=2", "/v1/ws?a=1&token=***&b=2"),
        (f"/v1/ws?TOKEN={KEY}", "/v1/ws?TOKEN=***"),
        (f"/v1/ws?%74oken={KEY}", "/v1/ws?%74oken=***"),  # what the server decodes as token
        (f"/v1/ws?tokens={KEY}", f"/v1/ws?tokens={KEY}"),  # another parameter
        ("/v1/budgets", "/v1/budgets"),
    ],
)
def test_token_parameters_are_masked(line: str, masked: str) -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s"', ("1.2.3.4", line), None
    )
    assert RedactTokenFilter().filter(record)
    assert record.getMessage() == f'1.2.3.4 - "WebSocket {masked}"'


def test_every_uvicorn_handler_has_the_filter() -> None:
    config = log_config()
    assert config["filters"]["redact_token"] == {"()": "jobbudget.api.serving.RedactTokenFilter"}
    assert {name: h["filters"] for name, h in config["handlers"].items()} == {
        "default": ["redact_token"],
        "access": ["redact_token"],
    }


def test_options_follow_the_configuration() -> None:
    config = Config(http_header_timeout=3, http_keep_alive_timeout=7, http_max_connections=50, http_backlog=64)
    options = uvicorn_options(config)
    assert options["http"] == "jobbudget.api.serving:GuardedH11Protocol"
    assert (options["timeout_keep_alive"], options["limit_concurrency"], options["backlog"]) == (7, 50, 64)
    assert options["h11_max_incomplete_event_size"] == 16384 and options["ws_max_size"] == 128 * 1024
    environ: dict[str, str] = {}
    export_settings(config, environ)  # what every worker's protocol reads
    assert environ == {HEADER_TIMEOUT_ENV: "3.0", MAX_CONNECTIONS_ENV: "50"}


def test_a_bad_metrics_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as refused:
        Config(metrics_token="short-secret")
    assert refused.value.field == "metrics_token" and "short-secret" not in str(refused.value)
