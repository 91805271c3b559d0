"""The console's pages under ``/console``. Each GET renders a read model that the JSON API
also serves; each POST is a form with the session's CSRF token that calls the same action as
the API (replay, acknowledge, resolve) and redirects (post/redirect/get)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.case import is_case_id
from services.messaging.envelope import EVENT_DISPLAY, EventCode
from services.messaging.problems import FieldError
from services.router.alerting import incidents
from services.router.alerting.incidents import AlertSink
from services.router.audit.access_log import AccessKind, list_access
from services.router.audit.admin_actions import record_admin_action, replay_summary
from services.router.audit.patient_data import (
    InvalidIdentifier,
    NoSuchCase,
    NoSuchMessage,
    open_case,
    open_payload,
    pseudonym_search,
)
from services.router.deviations import export as deviation_export
from services.router.deviations.records import (
    InvalidMonth,
    list_deviations,
    month_window,
    monthly_counts,
)
from services.router.ops import dashboard, queries
from services.router.ops.console.accounts import Role
from services.router.ops.console.identity import Authenticator, PasswordAuthenticator
from services.router.ops.console.login import login_routes
from services.router.ops.console.oidc_login import FailedOidcLogins
from services.router.ops.console.sessions import (
    AccountDirectory,
    SessionRules,
    SessionStore,
)
from services.router.ops.console.throttle import LoginThrottle, ThrottleRules
from services.router.ops.console.timeline import hops
from services.router.ops.console.web import (
    HERE,
    LoginRequired,
    Operator,
    check_csrf,
    login_url,
    render,
    require,
)
from services.router.ops.oidc.wiring import session_rechecker
from services.router.routing.domain import AlertState, DeliveryState, IllegalTransition
from services.router.routing.replay import ReplayFilter, audit_log, replay
from services.router.settings import RouterSettings
from services.router.statistics import export as statistics_export
from services.router.statistics import payment_export
from services.router.statistics.charts import render_charts
from services.router.statistics.payment import PaymentReport, payment_report
from services.router.statistics.periods import InvalidRange, Period
from services.router.statistics.report import StatisticsReport, statistics

Text = Annotated[str, Form(max_length=500)]
Csrf = Annotated[str, Form(max_length=64)]


def _actor(operator: Any) -> str:
    return f"{operator.user} (console)"


def console_routes(
    settings: RouterSettings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    alert_sinks: Sequence[AlertSink],
) -> APIRouter:
    web = APIRouter(prefix="/console", include_in_schema=False)
    keyring = settings.keyring()
    families = sorted(e.value for e in EventCode)

    @web.get("/", response_class=HTMLResponse)
    async def overview(request: Request, operator: Operator) -> HTMLResponse:
        lag = await dashboard.read_lag(request.app)
        async with sessions() as session:
            found = await dashboard.overview(session, clock(), lag=lag)
        return render(request, "dashboard.html", {"d": found}, operator=operator)

    @web.get("/messages", response_class=HTMLResponse)
    async def messages(
        request: Request,
        operator: Operator,
        since: str = "",
        until: str = "",
        event: str = "",
        source: str = "",
        destination: str = "",
        state: str = "",
        pseudonym: str = "",
        business_key: str = "",
        cursor: str = "",
    ) -> HTMLResponse:
        form = {
            "since": since,
            "until": until,
            "event": event,
            "source": source,
            "destination": destination,
            "state": state,
            "pseudonym": pseudonym,
            "business_key": business_key,
        }
        error = None
        page = queries.MessagePage(items=[], next_cursor=None)
        try:
            wanted = queries.MessageQuery(
                since=_datetime("since", since),
                until=_datetime("until", until),
                event_code=event or None,
                source=source or None,
                destination=destination or None,
                state=_state(state),
                pseudonym=pseudonym.strip().lower() or None,
                business_key=business_key.strip() or None,
            )
            async with sessions() as session:
                page = await queries.search_messages(
                    session, wanted, limit=50, cursor=cursor or None
                )
        except ValueError as exc:
            # the page names the field, and shows nothing typed into the form again
            error = _form_refusal(exc)
            form = dict.fromkeys(form, "")
        next_link = None
        if page.next_cursor:
            next_link = "?" + urlencode(
                {**{k: v for k, v in form.items() if v}, "cursor": page.next_cursor}
            )
        return _messages_page(request, operator, form, page, error, next_link)

    @web.post("/messages/by-personnummer", response_model=None)
    async def by_personnummer(
        request: Request,
        operator: Operator,
        personnummer: Annotated[str, Form(max_length=20)],
        reason: Text,
        csrf: Csrf,
    ) -> Response:
        check_csrf(operator, csrf)
        require(operator, Role.OPERATOR)
        if len(reason.strip()) < 3:
            return _form_error(request, operator, "reason: give a reason of at least 3 characters")
        try:
            async with sessions.begin() as session:
                found = await pseudonym_search(
                    session,
                    personnummer,
                    key=settings.pseudonym_key,
                    actor=operator.user,
                    role=operator.role.value,
                    reason=reason.strip(),
                    now=clock(),
                )
        except InvalidIdentifier as exc:
            return _form_error(request, operator, f"personnummer: {exc}")
        return RedirectResponse(f"/console/messages?pseudonym={found}", status_code=303)

    def _form_error(request: Request, operator: Any, error: str) -> HTMLResponse:
        empty = queries.MessagePage(items=[], next_cursor=None)
        return _messages_page(request, operator, {}, empty, error, None)

    def _messages_page(
        request: Request,
        operator: Any,
        form: dict[str, str],
        page: queries.MessagePage,
        error: str | None,
        next_link: str | None,
    ) -> HTMLResponse:
        return render(
            request,
            "messages.html",
            {
                "form": form,
                "page": page,
                "error": error,
                "next_link": next_link,
                "families": families,
                "states": [s.value for s in DeliveryState],
                "display": EVENT_DISPLAY,
            },
            operator=operator,
            status_code=422 if error else 200,
        )

    async def _message_page(
        request: Request,
        operator: Any,
        message_id: str,
        *,
        payload: dict[str, Any] | None = None,
        pruned_at: str | None = None,
        notice: str | None = None,
    ) -> HTMLResponse:
        async with sessions() as session:
            detail = await queries.message_detail(
                session,
                message_id,
                agreements=settings.payment_agreements_of(),
                directory=settings.municipality_directory(),
            )
        if detail is None:
            raise HTTPException(404, "no such message")
        return render(
            request,
            "message.html",
            {
                "m": detail,
                "hops": hops(detail),
                "payload": payload,
                "pruned_at": pruned_at,
                "notice": notice or request.query_params.get("notice"),
                "display": EVENT_DISPLAY,
                "dead": [d for d in detail["deliveries"] if d["state"] == "dead_letter"],
                "may_act": operator.may(Role.OPERATOR),
            },
            operator=operator,
        )

    @web.get("/messages/{message_id}", response_class=HTMLResponse)
    async def message(request: Request, operator: Operator, message_id: str) -> HTMLResponse:
        return await _message_page(request, operator, message_id)

    @web.get("/cases/{case_id}", response_class=HTMLResponse)
    async def case(request: Request, operator: Operator, case_id: str) -> HTMLResponse:
        """Every message of one stay in time order (services.messaging.case): metadata a
        viewer may read, but the whole stay of one patient, so the view is access-logged."""
        if not is_case_id(case_id):
            raise HTTPException(404, "no such case")
        try:
            async with sessions.begin() as session:
                await open_case(
                    session,
                    case_id,
                    actor=operator.user,
                    role=operator.role.value,
                    reason="case timeline (console)",
                    now=clock(),
                )
                items = await queries.case_timeline(
                    session,
                    case_id,
                    agreements=settings.payment_agreements_of(),
                    directory=settings.municipality_directory(),
                )
        except NoSuchCase:
            raise HTTPException(404, "no such case") from None
        return render(
            request,
            "case.html",
            {
                "case_id": case_id,
                "items": items,
                "pseudonyms": sorted({m["pseudonym"] or "" for m in items}),
                "display": EVENT_DISPLAY,
            },
            operator=operator,
        )

    @web.post("/messages/{message_id}/payload", response_class=HTMLResponse)
    async def payload(
        request: Request, operator: Operator, message_id: str, reason: Text, csrf: Csrf
    ) -> HTMLResponse:
        check_csrf(operator, csrf)
        require(operator, Role.OPERATOR)
        if len(reason.strip()) < 3:
            raise HTTPException(422, "reason: give a reason of at least 3 characters")
        try:
            async with sessions.begin() as session:
                view = await open_payload(
                    session,
                    message_id,
                    keyring=keyring,
                    actor=operator.user,
                    role=operator.role.value,
                    reason=reason.strip(),
                    now=clock(),
                )
        except NoSuchMessage:
            raise HTTPException(404, "no such message") from None
        return await _message_page(
            request, operator, message_id, payload=view.bundle, pruned_at=view.pruned_at
        )

    @web.post("/messages/{message_id}/replay")
    async def replay_message(
        operator: Operator,
        message_id: str,
        reason: Text,
        csrf: Csrf,
        force: Annotated[bool, Form()] = False,
    ) -> RedirectResponse:
        check_csrf(operator, csrf)
        require(operator, Role.OPERATOR)
        if len(reason.strip()) < 3:
            raise HTTPException(422, "reason: give a reason of at least 3 characters")
        async with sessions.begin() as session:
            now = clock()
            outcomes = await replay(
                session,
                ReplayFilter(message_ids=(message_id,)),
                actor=_actor(operator),
                reason=reason.strip(),
                force=force,
                now=now,
            )
            await record_admin_action(  # on the access log's chain, as the API's replays
                session,
                actor=_actor(operator),
                role=operator.role.value,
                action="replay",
                detail=replay_summary(outcomes, reason.strip(), force=force),
                now=now,
            )
        done = sum(o.replayed for o in outcomes)
        refused = "; ".join(o.detail for o in outcomes if not o.replayed)
        notice = f"replayed {done}" + (f", refused: {refused}" if refused else "")
        return RedirectResponse(
            f"/console/messages/{message_id}?{urlencode({'notice': notice})}", status_code=303
        )

    @web.get("/incidents", response_class=HTMLResponse)
    async def incident_list(request: Request, operator: Operator, state: str = "") -> HTMLResponse:
        wanted = AlertState(state).value if state in {s.value for s in AlertState} else None
        async with sessions() as session:
            items = await queries.list_alerts(session, state=wanted)
        return render(
            request,
            "incidents.html",
            {
                "items": items[:500],
                "state": wanted or "",
                "states": [s.value for s in AlertState],
                "may_act": operator.may(Role.OPERATOR),
                "notice": request.query_params.get("notice"),
            },
            operator=operator,
        )

    @web.post("/incidents/{alert_id}/{action}")
    async def act(
        operator: Operator, alert_id: int, action: str, note: Text, csrf: Csrf
    ) -> RedirectResponse:
        check_csrf(operator, csrf)
        require(operator, Role.OPERATOR)
        step = incidents.OPERATOR_ACTIONS.get(action)
        if step is None:
            raise HTTPException(404, "no such action")
        if len(note.strip()) < 3:
            raise HTTPException(422, "note: write at least 3 characters")
        async with sessions.begin() as session:
            try:
                done = await step(
                    session,
                    alert_id,
                    actor=_actor(operator),
                    note=note.strip(),
                    now=clock(),
                    sinks=alert_sinks,
                )
            except IllegalTransition as exc:
                raise HTTPException(
                    409, f"the incident is {exc.current}: cannot {action}"
                ) from None
        if not done:
            raise HTTPException(404, "no such incident")
        return RedirectResponse(
            f"/console/incidents?{urlencode({'notice': f'#{alert_id}: {action}d'})}",
            status_code=303,
        )

    @web.get("/deviations", response_class=HTMLResponse)
    async def deviations(request: Request, operator: Operator, month: str = "") -> HTMLResponse:
        error = None
        if month:
            try:
                month_window(month)
            except InvalidMonth as exc:
                error, month = f"month: {exc}", ""
        async with sessions() as session:
            items = await list_deviations(session, month=month or None, limit=500)
            months = await monthly_counts(session)
        return render(
            request,
            "deviations.html",
            {
                "items": deviation_export.to_json(items, generated_at=clock(), month=month or None)[
                    "deviations"
                ],
                "months": [m.to_json() for m in months],
                "month": month,
                "error": error,
                "query": urlencode({"month": month}) if month else "",
            },
            operator=operator,
            status_code=422 if error else 200,
        )

    @web.get("/deviations/export.{fmt}")
    async def deviations_export(operator: Operator, fmt: str, month: str = "") -> Response:
        if fmt not in ("csv", "json"):
            raise HTTPException(404, "csv or json")
        try:
            if month:
                month_window(month)
        except InvalidMonth as exc:
            raise HTTPException(422, f"month: {exc}") from None
        async with sessions() as session:
            items = await list_deviations(session, month=month or None)
        name = deviation_export.file_name(month or None, fmt)
        disposition = {"content-disposition": f'attachment; filename="{name}"'}
        if fmt == "csv":
            return Response(
                deviation_export.to_csv(items).encode("utf-8"),
                media_type=deviation_export.CSV_MEDIA_TYPE,
                headers=disposition,
            )
        document = deviation_export.to_json(items, generated_at=clock(), month=month or None)
        return Response(
            deviation_export.render_json(document),
            media_type="application/json",
            headers=disposition,
        )

    async def _statistics(period: str, since: str, until: str) -> StatisticsReport:
        try:
            wanted = _period(period or "day")
            first, last = _date("since", since), _date("until", until)
            async with sessions() as session:
                return await statistics(
                    session, period=wanted, since=first, until=last, now=clock()
                )
        except (ValueError, InvalidRange) as exc:
            raise HTTPException(422, f"{exc}") from None

    async def _payment(since: date | None, until: date | None) -> PaymentReport:
        try:
            async with sessions() as session:
                return await payment_report(
                    session,
                    agreements=settings.payment_agreements_of(),
                    directory=settings.municipality_directory(),
                    since=since,
                    until=until,
                    now=clock(),
                )
        except InvalidRange as exc:
            raise HTTPException(422, f"{exc}") from None

    @web.get("/statistics", response_class=HTMLResponse)
    async def statistics_page(
        request: Request, operator: Operator, period: str = "day", since: str = "", until: str = ""
    ) -> HTMLResponse:
        report = await _statistics(period, since, until)
        payment = await _payment(report.since, report.until)
        query = urlencode(
            {k: v for k, v in (("period", period), ("since", since), ("until", until)) if v}
        )
        return render(
            request,
            "statistics.html",
            {
                "report": statistics_export.to_document(report),
                "payment": payment_export.to_document(payment),
                "charts": render_charts(report),
                "period": report.period.value,
                "query": query,
            },
            operator=operator,
        )

    @web.get("/statistics/export.csv")
    async def statistics_csv(
        operator: Operator, period: str = "day", since: str = "", until: str = ""
    ) -> Response:
        report = await _statistics(period, since, until)
        name = statistics_export.file_name(report)
        return Response(
            statistics_export.to_csv(report).encode("utf-8"),
            media_type=statistics_export.CSV_MEDIA_TYPE,
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @web.get("/statistics/payment.csv")
    async def payment_csv(operator: Operator, since: str = "", until: str = "") -> Response:
        """The payment clock's evidence, one row per patient-stay-day (pseudonyms only)."""
        try:
            first, last = _date("since", since), _date("until", until)
        except ValueError as exc:
            raise HTTPException(422, f"{exc}") from None
        found = await _payment(first, last)
        return Response(
            payment_export.to_csv(found).encode("utf-8"),
            media_type=payment_export.CSV_MEDIA_TYPE,
            headers={
                "content-disposition": f'attachment; filename="{payment_export.file_name(found)}"'
            },
        )

    @web.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request, operator: Operator, category: str = "") -> HTMLResponse:
        """The replay audit and the access log: views of patient data and security events
        (``category`` keeps one of the two; a security event names no patient)."""
        security = {k for k in AccessKind if k.is_security_event}
        kinds = {"security": security, "patient-data": set(AccessKind) - security}.get(category)
        async with sessions() as session:
            replays = await audit_log(session, limit=200)
            access = await list_access(session, limit=200, kinds=kinds)
        for entry in access:
            entry["security"] = AccessKind(entry["kind"]).is_security_event
        return render(
            request,
            "audit.html",
            {"replays": replays, "access": access, "category": category if kinds else ""},
            operator=operator,
        )

    return web


class FormError(ValueError):
    """A search field that cannot be read; its text names the field, never its value."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__(f"{field}: {text}")
        self.field = field


def _datetime(field: str, value: str) -> datetime | None:
    """A date or a local date-time from the form (Stockholm time when no offset is given).
    A refusal names the field, never what was typed in it."""
    from services.router.ops.console.web import STOCKHOLM

    value = value.strip()
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise FormError(field, "not a date or time (YYYY-MM-DD or YYYY-MM-DD HH:MM)") from None
    return at if at.tzinfo else at.replace(tzinfo=STOCKHOLM)


def _form_refusal(exc: ValueError) -> str:
    if isinstance(exc, FormError):
        return str(exc)
    if isinstance(exc, queries.InvalidCursor):
        return f"cursor: {exc}"
    return "the search cannot be read"  # a message that might repeat a value is not shown


def _period(value: str) -> Period:
    if value not in {p.value for p in Period}:
        raise FormError("period", f"one of {', '.join(p.value for p in Period)}")
    return Period(value)


def _state(value: str) -> str | None:
    if not value:
        return None
    if value not in {s.value for s in DeliveryState}:
        raise FormError("state", f"one of {', '.join(s.value for s in DeliveryState)}")
    return value


def _date(field: str, value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise FormError(field, "not a date (YYYY-MM-DD)") from None


def error_page(
    request: Request, status: int, detail: str, errors: Sequence[FieldError]
) -> Response | None:
    """A person at the console gets a page that says what went wrong (which fields, never
    what was typed in them); the API and the static files answer in their own shape."""
    path = request.url.path
    if not path.startswith("/console/") or path.startswith("/console/static/"):
        return None
    return render(
        request,
        "error.html",
        {"status": status, "detail": detail, "errors": errors},
        status_code=status,
    )


def install_console(
    app: FastAPI,
    settings: RouterSettings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    alert_sinks: Sequence[AlertSink],
    authenticator: Authenticator | None = None,
) -> None:
    """Mount the console, its log-in, its static files and its log-in redirect on the
    router's app (its error pages: :func:`error_page`). ``authenticator``: who may log in; by
    default the configured and stored accounts, which also say whether a password session's
    account still has its role (``app.state.console_sessions``: the session store). Another
    authenticator answers that too if it is an ``AccountDirectory``; if not, its sessions
    are checked against the configured and stored accounts all the same."""
    app.state.clock = clock
    accounts = PasswordAuthenticator(settings.console_users, sessions)
    authenticator = authenticator or accounts
    directory = authenticator if isinstance(authenticator, AccountDirectory) else accounts
    store = SessionStore(
        sessions,
        key=settings.console_secret,
        accounts=directory,
        rules=SessionRules(
            absolute=timedelta(seconds=settings.console_session_s),
            idle=timedelta(seconds=settings.console_idle_s),
            recheck_every=timedelta(seconds=settings.oidc_session_recheck_s),
            recheck_grace=timedelta(seconds=settings.oidc_session_grace_s),
        ),
        rechecker=session_rechecker(app, settings),
    )
    throttle = LoginThrottle(
        sessions,
        ThrottleRules(
            per_account=settings.console_login_failures_per_account,
            per_address=settings.console_login_failures_per_address,
            window=timedelta(seconds=settings.console_login_window_s),
            max_delay=timedelta(seconds=settings.console_login_window_s),
        ),
    )
    app.state.console_sessions = store
    # refused OIDC callbacks in the access log (console/oidc_login.py)
    app.state.console_failed_logins = failed = FailedOidcLogins(sessions, clock)
    app.include_router(
        login_routes(settings, sessions, clock, authenticator, store, throttle, failed)
    )
    app.include_router(console_routes(settings, sessions, clock, alert_sinks))
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    @app.get("/", include_in_schema=False)
    async def _root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)
