"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) with their scripts, style sheets and
icon served by this server from the ``fastapi-offline`` package, so both pages work
without internet access and load nothing from a CDN."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

__all__ = ["ASSETS_URL", "install_docs"]

ASSETS_URL = "/docs/assets"
_ASSETS = Path(fastapi_offline.__file__).parent / "static"
#: Swagger UI would otherwise send the schema to an online validator for its badge.
_SWAGGER_PARAMETERS = {"validatorUrl": None}


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` and ReDoc at ``/redoc`` for the app's schema (build
    ``app`` with ``docs_url=None, redoc_url=None``; nothing without a schema)."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        return
    app.mount(ASSETS_URL, StaticFiles(directory=_ASSETS), name="docs-assets")

    def links(request: Request) -> tuple[str, str]:
        """The schema's URL and the assets' folder, under the app's root path."""
        root = request.scope.get("root_path", "")
        return root + openapi_url, f"{root}{ASSETS_URL}/"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        schema, assets = links(request)
        return get_swagger_ui_html(
            openapi_url=schema,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=assets + "swagger-ui-bundle.js",
            swagger_css_url=assets + "swagger-ui.css",
            swagger_favicon_url=assets + "favicon.png",
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        schema, assets = links(request)
        title, script, icon = f"{app.title} - ReDoc", assets + "redoc.standalone.js", assets + "favicon.png"
        return get_redoc_html(
            openapi_url=schema, title=title, redoc_js_url=script, redoc_favicon_url=icon, with_google_fonts=False
        )
