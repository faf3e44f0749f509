"""Server-rendered pages: `install` adds them all; here sign-in, worklist, portal, inbox and error pages.

Every page acts as the signed-in user through the Workflow facade, so the engine's own jurisdiction
checks apply: an appeal outside the user's reach gets the same 404 page as a number that does not
exist. Pages are Chinese unless ?lang=en (remembered in a cookie) or the user's own locale says otherwise.
The appeal page lives in appeal_page.py, the dashboard in dashboard_page.py.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from notifications.inbox import inbox_view, mark_read, unread_count
from workflow.domain.org import Role
from workflow.domain.spec import pick_title
from workflow.errors import (
    Conflict,
    EnterpriseNotFound,
    FormInvalid,
    NotFound,
    NotPermitted,
    OutsideJurisdiction,
    VersionConflict,
    WorkflowError,
)
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import NotSignedIn, SignInFailed, TooManyAttempts
from workflow.services.commands import CHANNELS
from workflow.web import appeal_page, dashboard_page
from workflow.web.errors import DATA_REFUSED, status_of
from workflow.web.i18n import problem_message, t
from workflow.web.page_queries import enterprises_for
from workflow.web.page_support import (
    FAILURES_COOKIE,
    LOGIN_COOKIE,
    PORTAL_ROLES,
    SESSION_COOKIE,
    STATIC_DIR,
    CheckedForm,
    CsrfRefused,
    LoginRequired,
    Me,
    PlainForm,
    Viewer,
    accounts_of,
    clear_cookie,
    current_session,
    form_values,
    home_of,
    input_value,
    localise_units,
    login_form_ok,
    login_token,
    make_templates,
    render,
    request_locale,
    running_for,
    safe_local,
    see_other,
    set_cookie,
    set_session_cookie,
    text_of,
    urgency,
    workflow_of,
)

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
API_PREFIXES = ("/api/", "/openapi.json", "/docs", "/redoc")


def install(app: FastAPI) -> None:
    """Add the pages, /static and HTML error pages; call after `errors.install`, whose JSON answers
    the API keeps."""
    app.state.page_templates = make_templates()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
    app.include_router(appeal_page.router)
    app.include_router(dashboard_page.router)
    _install_error_pages(app)


# --- sign in and out -------------------------------------------------------------------------------
@router.get("/")
def home(request: Request) -> Response:
    session = current_session(request)
    return see_other(home_of(session.actor.role) if session else "/login")


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    if current_session(request) is not None:
        return see_other(safe_local(next))
    return _login(request, safe_local(next))


def _login(
    request: Request,
    next_path: str,
    error: str | None = None,
    status: int = 200,
    username: str = "",
    retry_after: int | None = None,
) -> Response:
    token = login_token(request)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    response = render(
        request,
        "login.html",
        {"next": next_path, "error": error, "login_csrf": token, "username": username},
        status=status,
        headers=headers,
    )
    set_cookie(request, response, LOGIN_COOKIE, token, 3600)
    return response


@router.post("/login")
def login(request: Request, form: PlainForm) -> Response:
    next_path = safe_local(text_of(form, "next", 500))
    if not login_form_ok(request, form.get("csrf")):
        raise CsrfRefused()
    username, password = text_of(form, "username", 64).strip(), text_of(form, "password", 256)
    locale = request_locale(request)
    address = request.client.host if request.client else "unknown"
    wf = workflow_of(request)
    try:
        with UnitOfWork(wf.engine) as uow:
            token, session = accounts_of(request).sign_in(uow, username, password, address, kind="session")
            failures = accounts_of(request).sign_in_history(uow, session)["failed_attempts_since_previous"]
            uow.commit()
    except TooManyAttempts as exc:
        message = t("login.throttled", locale, seconds=exc.retry_after)
        return _login(request, next_path, message, 429, username, retry_after=exc.retry_after)
    except SignInFailed:
        return _login(request, next_path, t("login.failed", locale), 401, username)
    response = see_other(next_path)
    set_session_cookie(request, response, token)
    clear_cookie(request, response, LOGIN_COOKIE)
    if failures:
        set_cookie(request, response, FAILURES_COOKIE, str(failures), 600)
    return response


@router.post("/logout")
def logout(request: Request, me: Me, form: CheckedForm) -> Response:
    wf = workflow_of(request)
    with UnitOfWork(wf.engine) as uow:
        accounts_of(request).revoke(uow, request.cookies.get(SESSION_COOKIE, ""))
        uow.commit()
    response = see_other("/login")
    clear_cookie(request, response, SESSION_COOKIE)
    return response


# --- worklist --------------------------------------------------------------------------------------
@router.get("/worklist")
def worklist(request: Request, me: Me, view: str = "mine") -> Response:
    if me.actor.role == Role.ENTERPRISE_CONTACT:
        return see_other("/portal")
    wf = workflow_of(request)
    user, locale = me.actor.username, me.locale
    if view == "all":
        # The whole area can be large: every breached and at-risk appeal first (up to 100 each), then the newest.
        breached, _ = wf.list_appeals(as_user=user, overdue=True, limit=100, locale=locale)
        at_risk, _ = wf.list_appeals(as_user=user, at_risk=True, limit=100, locale=locale)
        newest, total = wf.list_appeals(as_user=user, open_only=True, limit=200, locale=locale)
        appeals = list({a["number"]: a for a in [*newest, *at_risk, *breached]}.values())
    else:
        view = "mine"
        appeals, total = wf.list_appeals(as_user=user, assignee=user, open_only=True, limit=300, locale=locale)
    appeals.sort(key=urgency)
    localise_units(wf, appeals, locale)
    return render(
        request,
        "worklist.html",
        {"view": view, "appeals": appeals, "total": total, "running_for": running_for(wf, wf.clock.now())},
        me=me,
    )


# --- enterprise portal -----------------------------------------------------------------------------
def _portal_allowed(me: Viewer) -> None:
    if me.actor.role not in PORTAL_ROLES:
        raise NotPermitted(f"the portal is for enterprises and their specialists, not role {me.actor.role!r}")


@router.get("/portal")
def portal(request: Request, me: Me, page: int = 1) -> Response:
    _portal_allowed(me)
    wf = workflow_of(request)
    page = max(1, min(page, 10_000))
    definitions = wf.definitions(me.locale)
    waiting: dict[str, set[str]] = {
        d["name"]: {s["name"] for s in d["states"] if s["role"] == Role.ENTERPRISE_CONTACT} for d in definitions
    }
    appeals: list[dict[str, Any]] = []
    total = 0
    if me.actor.role == Role.ENTERPRISE_CONTACT:
        appeals, total = wf.list_appeals(as_user=me.actor.username, limit=20, offset=(page - 1) * 20, locale=me.locale)
        for appeal in appeals:
            appeal["waiting_on_me"] = appeal["is_open"] and appeal["state"] in waiting.get(appeal["type"], set())
    context = {
        "definitions": definitions,
        "appeals": appeals,
        "total": total,
        "page": page,
        "pages": (total + 19) // 20,
    }
    return render(request, "portal.html", context, me=me)


def _new_form(
    request: Request,
    me: Viewer,
    type: str,
    *,
    typed: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    wf = workflow_of(request)
    definition = wf.definition(type, me.locale)
    enterprises: list[tuple[int, str]] = []
    if me.actor.role != Role.ENTERPRISE_CONTACT:
        with UnitOfWork(wf.engine, read_only=True) as uow:
            enterprises = enterprises_for(uow, me.actor)
    typed = typed or {}
    context = {
        "definition": definition,
        "title": pick_title(definition["title"], me.locale),
        "inputs": {f["name"]: input_value(f, typed.get(f["name"])) for f in definition["fields"]},
        "checked": {f["name"]: typed.get(f["name"]) or [] for f in definition["fields"]},
        "problems": problems or {},
        "enterprises": enterprises,
        "enterprise": str(typed.get("enterprise_id", "")),
        "channels": CHANNELS,
        "channel": str(typed.get("channel", "offline")),
    }
    return render(request, "portal_new.html", context, me=me, status=status)


@router.get("/portal/new/{type}")
def new_appeal_form(request: Request, type: str, me: Me) -> Response:
    _portal_allowed(me)
    return _new_form(request, me, type)


@router.post("/portal/new/{type}")
def submit_appeal(request: Request, type: str, me: Me, form: CheckedForm) -> Response:
    _portal_allowed(me)
    wf = workflow_of(request)
    definition = wf.definition(type, me.locale)
    data, typed = form_values(definition["fields"], form)
    actor = me.actor
    channel = "online"
    enterprise = actor.enterprise_id
    if actor.role != Role.ENTERPRISE_CONTACT:
        typed["enterprise_id"] = text_of(form, "enterprise_id", 12)
        typed["channel"] = channel = text_of(form, "channel", 32) or "offline"
        enterprise = int(typed["enterprise_id"]) if typed["enterprise_id"].isdigit() else None
    if enterprise is None:
        problems = {"enterprise_id": t("form.is_required", me.locale)}
        return _new_form(request, me, type, typed=typed, problems=problems, status=422)
    try:
        appeal = wf.submit(type, enterprise_id=enterprise, as_user=actor.username, data=data, channel=channel)
    except FormInvalid as exc:
        problems = {p.field: problem_message(p, me.locale) for p in exc.problems}
        return _new_form(request, me, type, typed=typed, problems=problems, status=422)
    except (EnterpriseNotFound, OutsideJurisdiction):
        problems = {"enterprise_id": t("error.404", me.locale)}
        return _new_form(request, me, type, typed=typed, problems=problems, status=422)
    return see_other(f"/appeals/{quote(appeal['number'])}?submitted=1")


# --- inbox -----------------------------------------------------------------------------------------
@router.get("/inbox")
def inbox(request: Request, me: Me, marked: int | None = None) -> Response:
    view = inbox_view(workflow_of(request).engine, replace(me.actor, locale=me.locale), limit=100)
    flash = t("inbox.marked", me.locale, count=marked) if marked is not None else None
    return render(request, "inbox.html", {"notices": view["notices"], "unread": view["unread"], "flash": flash}, me=me)


@router.post("/inbox/read")
def read_notices(request: Request, me: Me, form: CheckedForm) -> Response:
    wf = workflow_of(request)
    if form.get("all") == "1":
        unread = inbox_view(wf.engine, me.actor, unread_only=True, limit=500)["notices"]
        ids = [int(n["id"]) for n in unread]
    else:
        ids = [int(v) for v in form.getlist("id") if isinstance(v, str) and v.isdigit() and len(v) < 19][:500]
    marked = mark_read(wf.engine, wf.clock, me.actor, ids)["marked"] if ids else 0
    return see_other(f"/inbox?marked={marked}")


# --- error pages -----------------------------------------------------------------------------------
Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def _error_page(request: Request, status: int, message_key: str, detail: str | None = None) -> Response:
    session = current_session(request)
    locale = request_locale(request, session.actor.locale if session else None)
    me = Viewer(session, locale, unread_count(workflow_of(request).engine, session.actor)) if session else None
    context = {"status": status, "message": t(message_key, locale), "detail": detail}
    return render(request, "error.html", context, me=me, locale=locale, status=status)


def _page_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        return see_other("/login?" + urlencode({"next": exc.next_path}))
    if isinstance(exc, CsrfRefused):
        return _error_page(request, 403, "error.csrf")
    if isinstance(exc, NotSignedIn):
        return see_other("/login")
    if isinstance(exc, NotFound | OutsideJurisdiction):
        return _error_page(request, 404, "error.404")
    if isinstance(exc, NotPermitted):
        return _error_page(request, 403, "error.403")
    if isinstance(exc, VersionConflict):
        return _error_page(request, 409, "error.409")
    if isinstance(exc, WorkflowError):
        status = status_of(exc)
        return _error_page(request, status, "error.409" if isinstance(exc, Conflict) else "error.title", str(exc))
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 404:
            return _error_page(request, 404, "error.404")
        return _error_page(request, exc.status_code, "error.title", str(exc.detail))
    if isinstance(exc, DataError):
        log.warning("the database refused a value on page %s %s: %s", request.method, request.url.path, exc.orig)
        return _error_page(request, 422, "error.title", DATA_REFUSED)
    log.exception("unexpected error on page %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 500, "error.500")


def _install_error_pages(app: FastAPI) -> None:
    """HTML for pages; the API's JSON handlers (errors.install) stay in charge of /api."""
    previous: dict[Any, Handler] = dict(app.exception_handlers)

    def handler_for(kind: type[Exception]) -> Handler:
        async def handle(request: Request, exc: Exception) -> Response:
            json_handler = previous.get(kind)
            if _is_api(request) and json_handler is not None:
                answer = json_handler(request, exc)
                return await answer if isinstance(answer, Awaitable) else answer
            return await run_in_threadpool(_page_error, request, exc)

        return handle

    kinds: tuple[type[Exception], ...] = (
        WorkflowError,
        StarletteHTTPException,
        Exception,
        LoginRequired,
        CsrfRefused,
        DataError,
    )
    for kind in kinds:
        app.add_exception_handler(kind, handler_for(kind))
