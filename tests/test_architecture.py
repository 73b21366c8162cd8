"""Layering rules: the domain is pure, and importing the package is cheap and inert."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
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


def imported_modules(source: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, the text of ``path``;
    relative imports are resolved against the module's package."""
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
                if not node.module:
                    found.extend((node.lineno, f"{name}.{alias.name}") for alias in node.names)
                    continue
                found.append((node.lineno, name))
            else:
                found.append((node.lineno, node.module or ""))
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
