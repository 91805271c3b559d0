"""The console's plumbing: templates, the language, the signed-in operator (looked up in the
session store on every request: :mod:`services.router.ops.console.sessions`), CSRF checks.
Pages (:mod:`services.router.ops.console.pages`) only read input, call the same read models
and actions as the JSON API, and render."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from services.router.ops.console import sessions as console_sessions
from services.router.ops.console.accounts import Role
from services.router.ops.console.labels import LANGS, Lang, label
from services.router.ops.console.sessions import OperatorSession, SessionStore

HERE = Path(__file__).parent
STOCKHOLM = ZoneInfo("Europe/Stockholm")
templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescapes .html


def local_time(value: Any) -> str:
    """Stockholm time to the second, as the people on duty read it."""
    if value is None or value == "":
        return "–"
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M:%S")


def deadline_time(value: Any) -> str:
    """A deadline in Stockholm time to the minute, with its zone spelt out (CET or CEST):
    a deadline read in the wrong zone is an hour off."""
    if value is None or value == "":
        return "–"
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M %Z")


templates.env.filters["local"] = local_time
templates.env.filters["deadline"] = deadline_time


class LoginRequired(Exception):
    """No valid session: the page sends the browser to the log-in form."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def language(request: Request) -> Lang:
    wanted = request.query_params.get("lang") or request.cookies.get("lang") or "sv"
    return wanted if wanted in LANGS else "sv"


async def current(request: Request) -> OperatorSession:
    store: SessionStore = request.app.state.console_sessions
    clock: Callable[[], datetime] = request.app.state.clock
    found = await store.lookup(request.cookies.get(console_sessions.COOKIE), now=clock())
    if found is None:
        raise LoginRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    return found


Operator = Annotated[OperatorSession, Depends(current)]


def require(operator: OperatorSession, needed: Role) -> None:
    if not operator.may(needed):
        raise HTTPException(403, "your role may not do this")


def check_csrf(operator: OperatorSession, token: str) -> None:
    if not hmac.compare_digest(operator.csrf, token or ""):
        raise HTTPException(403, "the form is stale or was not sent by the console: reload it")


def login_url(next_path: str) -> str:
    return f"/console/login?next={quote(next_path, safe='')}"


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    operator: OperatorSession | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    lang = language(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "t": lambda key: label(key, lang),
            "lang": lang,
            "other_lang": "en" if lang == "sv" else "sv",
            "operator": operator,
            "csrf": operator.csrf if operator else "",
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in LANGS:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
    return response
