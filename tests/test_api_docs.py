"""docs/api.md is generated from the OpenAPI schema and must be current: a changed
endpoint without regenerated docs fails here (run ``python -m jobbudget.api.docgen``)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from jobbudget.api import docgen

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    return docgen.openapi_schema()


def test_docs_are_current(schema: dict[str, object]) -> None:
    assert DOC.read_text(encoding="utf-8") == docgen.render(schema), (
        "docs/api.md is out of date: run `python -m jobbudget.api.docgen`"
    )


def test_every_path_and_method_is_documented(schema: dict[str, object]) -> None:
    text = DOC.read_text(encoding="utf-8")
    paths = schema["paths"]
    assert isinstance(paths, dict) and paths
    for path, item in paths.items():
        for method in item:
            if method in docgen._METHODS:
                assert f"### `{method.upper()} {path}`" in text, f"{method.upper()} {path} is missing"


def test_render_is_deterministic(schema: dict[str, object]) -> None:
    assert docgen.render(schema) == docgen.render(docgen.openapi_schema())


def test_check_mode(tmp_path: Path) -> None:
    out = tmp_path / "api.md"
    assert docgen.main(["--check", "--output", str(out)]) == 1
    assert docgen.main(["--output", str(out)]) == 0
    assert docgen.main(["--check", "--output", str(out)]) == 0
    out.write_text(out.read_text(encoding="utf-8") + "stale\n", encoding="utf-8")
    assert docgen.main(["--check", "--output", str(out)]) == 1
