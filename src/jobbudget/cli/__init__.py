"""The ``jobbudget`` command-line interface (Typer + Rich).

``jobbudget --help`` lists the commands; every command takes ``--config PATH``,
``--database-url URL`` (or ``JOBBUDGET_CONFIG`` / ``JOBBUDGET_DATABASE_URL``) and
``--json``.  Errors are printed as ``error [CODE]: message`` with exit status 2 for
invalid input and 1 otherwise; ``check`` exits with 3 when the job would be blocked.
"""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
