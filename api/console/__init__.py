"""The marketer console, served under `/console` by the same app as the API.

`install_console(app)` adds the pages, their static files and the two exception
handlers that turn a missing session into the login page and a `PageError` into
an HTML page with its status (the API's handlers answer JSON).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.console.auth import LoginRequired, login_url
from api.console.pages import PageError, error_page, router

STATIC = Path(__file__).parent / "static"


def install_console(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(LoginRequired)
    async def _login(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return error_page(request, exc)
