"""Layering rules: the domain is pure, each layer imports only the layers below it,
and importing the package is cheap and inert.

The import checks read every module's source (``ast``, nothing is imported) and count
every import statement: at module level, inside functions (a lazy import is still a
runtime dependency) and under ``if TYPE_CHECKING:`` (a type-only import of the
service from the analytics was the import cycle that issue 17 removed)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import deque
from functools import cache
from pathlib import Path

import pytest

import jobbudget

PACKAGE_DIR = Path(jobbudget.__file__).resolve().parent
DOMAIN_DIR = PACKAGE_DIR / "domain"
ALLOWED_THIRD_PARTY = {"numpy"}
HEAVY_OPTIONAL = ("textual", "fastapi", "uvicorn", "starlette", "celery", "rq", "redis")


def domain_files() -> list[Path]:
    files = sorted(DOMAIN_DIR.rglob("*.py"))
    assert files, f"no domain modules found in {DOMAIN_DIR}"
    return files


def imported_modules(source: str, path: Path, *, names: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, the text of ``path``;
    relative imports are resolved against the module's package.  With ``names``,
    ``from M import a`` gives ``M.a`` (``a`` may be a submodule; the caller tells)."""
    tree = ast.parse(source, filename=str(path))
    package_parts = ["jobbudget", *path.relative_to(PACKAGE_DIR).parent.parts]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                if node.level - 1 > len(package_parts) - 1:
                    found.append((node.lineno, "<beyond the top-level package>"))
                    continue
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if names or not node.module:
                found.extend((node.lineno, f"{name}.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, name))
    return found


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    if module == "jobbudget.domain" or module.startswith("jobbudget.domain."):
        return True
    if top == "jobbudget":
        return False
    return top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY or top == "__future__"


@pytest.mark.parametrize("path", domain_files(), ids=lambda p: p.name)
def test_domain_imports_only_stdlib_numpy_and_itself(path: Path) -> None:
    found = imported_modules(path.read_text(encoding="utf-8"), path)
    bad = [f"{path.name}:{line} imports {module}" for line, module in found if not allowed(module)]
    assert not bad, "\n".join(bad)


def test_the_import_checker_catches_violations() -> None:
    source = (
        "import sqlalchemy\nfrom pydantic import BaseModel\nfrom ..config import Config\n"
        "from .. import service\nfrom ...elsewhere import x\nfrom . import money\n"
        "from .periods import zone\nimport decimal, numpy.linalg\nfrom __future__ import annotations\n"
    )
    found = [m for _, m in imported_modules(source, DOMAIN_DIR / "probe.py") if not allowed(m)]
    assert found == [
        "sqlalchemy",
        "pydantic",
        "jobbudget.config",
        "jobbudget.service",
        "<beyond the top-level package>",
    ]


# -- layers ---------------------------------------------------------------------------
ROOT = "jobbudget"  # the package root: its __init__ re-exports BudgetService, so importing it imports the service
SERVICE = "service"  # service.py and service_*.py
ADAPTERS = frozenset({"api", "cli", "tui"})
#: What each layer never imports, directly or through other modules of the package.
#: (The domain's own rule, stricter, is test_domain_imports_only_stdlib_numpy_and_itself.)
FORBIDDEN: dict[str, frozenset[str]] = {
    "storage": frozenset({SERVICE, ROOT, "core", "analytics", *ADAPTERS}),
    "counters": frozenset({SERVICE, ROOT, "core", "analytics", *ADAPTERS}),
    "notify": frozenset({SERVICE, ROOT, "core", "analytics", *ADAPTERS}),
    "analytics": frozenset({SERVICE, ROOT, "core", *ADAPTERS}),
    "core": frozenset({SERVICE, ROOT, "analytics", *ADAPTERS}),
    "slurm": frozenset(
        {SERVICE, ROOT, "core", "analytics", *ADAPTERS}
    ),  # pure: what the API and CLI use  # the collaborators: the facade's, not its users'
    SERVICE: ADAPTERS,
    "api": frozenset({"cli", "tui"}),
}


def module_name(path: Path) -> str:
    parts = [ROOT, *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """``service`` for service.py and service_*.py, ``jobbudget`` for the package root,
    else the subpackage or top-level module (``storage``, ``config``, ...)."""
    parts = module.split(".")
    if len(parts) == 1:
        return ROOT
    return SERVICE if parts[1] == SERVICE or parts[1].startswith(f"{SERVICE}_") else parts[1]


def import_graph(sources: dict[str, tuple[Path, str]]) -> dict[str, dict[str, int]]:
    """module -> {module of the package it imports: first line}.  An imported name
    that is not a module counts as its module (``from ..domain.money import ZERO``:
    ``jobbudget.domain.money``; ``from jobbudget import BudgetService``: the root); a
    module also imports the packages above it (their ``__init__`` runs), save the root
    (which runs for every module: an explicit import of it is what counts)."""
    graph: dict[str, dict[str, int]] = {}
    for module, (path, source) in sources.items():
        edges: dict[str, int] = {}
        for line, name in imported_modules(source, path, names=True):
            parts = name.split(".")
            if parts[0] != ROOT:
                continue
            while len(parts) > 1 and ".".join(parts) not in sources:
                parts.pop()
            for end in range(len(parts), 0 if len(parts) == 1 else 1, -1):  # the module, then its packages
                edges.setdefault(".".join(parts[:end]), line)
        edges.pop(module, None)
        graph[module] = edges
    return graph


def package_sources() -> dict[str, tuple[Path, str]]:
    return {module_name(p): (p, p.read_text(encoding="utf-8")) for p in sorted(PACKAGE_DIR.rglob("*.py"))}


@cache
def package_graph() -> dict[str, dict[str, int]]:
    return import_graph(package_sources())


def layer_violations(graph: dict[str, dict[str, int]], module: str) -> list[str]:
    """Every module of a forbidden layer that ``module`` reaches, with the shortest chain."""
    forbidden = FORBIDDEN.get(layer_of(module), frozenset())
    came_from: dict[str, str] = {}
    queue = deque([module])
    bad: list[str] = []
    seen: set[tuple[str, str]] = set()  # (the module it came from, layer): one report each
    while queue:
        current = queue.popleft()
        for target in graph.get(current, {}):
            if target in came_from or target == module:
                continue
            came_from[target] = current
            if layer_of(target) in forbidden:  # reported, not followed: the first one is to fix
                if (current, layer_of(target)) in seen:
                    continue
                seen.add((current, layer_of(target)))
                chain = [target]
                while chain[-1] != module:
                    chain.append(came_from[chain[-1]])
                first = chain[-2]
                bad.append(f"{module}:{graph[module][first]} -> {' -> '.join(reversed(chain[:-1]))}")
            else:
                queue.append(target)
    return bad


def layered_modules() -> list[str]:
    modules = [m for m in package_graph() if layer_of(m) in FORBIDDEN]
    assert {layer_of(m) for m in modules} == set(FORBIDDEN), "a layer of FORBIDDEN has no modules"
    return modules


@pytest.mark.parametrize("module", layered_modules())
def test_layers_import_only_what_they_may(module: str) -> None:
    """storage, counters and notify never import the service (nor the package root,
    which imports it), its collaborators (core), the analytics, the API, the CLI or
    the TUI; the analytics never import the service, core or an adapter; core never
    imports the service, the analytics or an adapter; the service never imports the
    TUI, the API or the CLI; the API never imports the CLI or the TUI."""
    bad = layer_violations(package_graph(), module)
    assert not bad, f"{layer_of(module)} must not import {sorted(FORBIDDEN[layer_of(module)])}:\n" + "\n".join(bad)


def test_the_layer_checker_catches_violations() -> None:
    probe = PACKAGE_DIR / "storage" / "probe.py"
    source = (
        "from typing import TYPE_CHECKING\nfrom ..metrics import PrometheusMetrics\nfrom jobbudget import Config\n"
        "if TYPE_CHECKING:\n    from ..analytics.readmodel import ReadModel\n"
        "def f():\n    from ..cli import common\n    from .memory import MemoryStore\n"
    )
    graph = import_graph({**package_sources(), "jobbudget.storage.probe": (probe, source)})
    bad = layer_violations(graph, "jobbudget.storage.probe")
    assert "jobbudget.storage.probe:2 -> jobbudget.metrics -> jobbudget.service" in bad  # through another module
    assert "jobbudget.storage.probe:3 -> jobbudget" in bad  # the root re-exports the service
    assert "jobbudget.storage.probe:5 -> jobbudget.analytics.readmodel" in bad  # TYPE_CHECKING counts
    assert "jobbudget.storage.probe:7 -> jobbudget.cli.common" in bad  # so does an import in a function
    assert not [b for b in bad if ":8 " in b]  # its own layer is fine
    assert layer_of("jobbudget.service_budgets") == SERVICE and layer_of("jobbudget.storage.sql.store") == "storage"
    assert layer_violations(graph, "jobbudget.config") == []  # a module of no rule


def run_python(code: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBBUDGET_")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_jobbudget_skips_optional_uis(tmp_path: Path) -> None:
    out = run_python(
        f"import json, sys, jobbudget\nprint(json.dumps({{m: m in sys.modules for m in {list(HEAVY_OPTIONAL)!r}}}))",
        tmp_path,
    )
    loaded = json.loads(out)
    assert loaded == dict.fromkeys(HEAVY_OPTIONAL, False)


def test_importing_jobbudget_builds_nothing(tmp_path: Path) -> None:
    # No database file, no threads, no handlers: nothing happens until a service is built.
    out = run_python(
        "import logging, threading, json, jobbudget\n"
        "print(json.dumps({'threads': threading.active_count(),"
        " 'handlers': [h for h in logging.getLogger('jobbudget').handlers"
        " if not isinstance(h, logging.NullHandler)] != []}))",
        tmp_path,
    )
    state = json.loads(out)
    assert state == {"threads": 1, "handlers": False}
    assert list(tmp_path.iterdir()) == []


def test_analytics_names_are_public_and_load_lazily() -> None:
    code = (
        "import sys, jobbudget\n"
        "assert 'numpy' not in sys.modules, 'import jobbudget pulled in numpy'\n"
        "from jobbudget import ModelCalibrator, BenchmarkResult, CalibrationReport, Forecast, forecast_spend\n"
        "from jobbudget import BudgetReport, CostDriver\n"
        "assert ModelCalibrator.__module__ == 'jobbudget.domain.calibration'\n"
        "assert set(jobbudget._LAZY) <= set(jobbudget.__all__)\n"
        "try:\n    jobbudget.NoSuchThing\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit('no error')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
