"""What every page needs: who is signed in, which language, CSRF checks, form values, rendering.

Sessions are tokens from `Accounts` (kind "session") in the HttpOnly cookie `appeals_session`; each
session has its own CSRF value, which every POST form carries back in the hidden field `csrf`. The
sign-in form, which has no session yet, uses a signed double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from notifications.inbox import unread_count
from workflow.domain.appeal import Actor
from workflow.domain.authorization import SUBMITTER_ROLES, SUMMARY_ROLES
from workflow.domain.durations import WorkingDuration
from workflow.domain.org import SUPERVISOR_ROLES, Role
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import Accounts, NotSignedIn, Session
from workflow.services.workflow import Workflow
from workflow.web.i18n import LOCALES, pick_locale, t, title_of
from workflow.web.page_queries import unit_names
from workflow.web.request_text import pairs_problems, refuse_unstorable
from workflow.web.settings import WebSettings

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR, STATIC_DIR = HERE / "templates", HERE / "static"
SESSION_COOKIE, LANG_COOKIE, LOGIN_COOKIE = "appeals_session", "appeals_lang", "appeals_login_csrf"
FAILURES_COOKIE = "appeals_failed_sign_ins"  # failed attempts to tell of on the first page after signing in
SHANGHAI = ZoneInfo("Asia/Shanghai")
SECURITY_HEADERS = {
    # Everything the pages use is served from here; charts are inline SVG, which needs no exception.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
DASHBOARD_ROLES = SUMMARY_ROLES
WORKLIST_ROLES = frozenset(Role) - {Role.ENTERPRISE_CONTACT, Role.SYSTEM}
PORTAL_ROLES = SUBMITTER_ROLES  # the portal is where appeals are submitted
_LOCAL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


class LoginRequired(Exception):
    """No valid session: the page handler sends the browser to /login and back here afterwards."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path
        super().__init__(f"sign in to see {next_path}")


class CsrfRefused(Exception):
    """A POST whose form did not carry this session's CSRF value."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at a page, in the language they see it in."""

    session: Session
    locale: str
    unread: int

    @property
    def actor(self) -> Actor:
        return self.session.actor

    @property
    def csrf(self) -> str:
        return self.session.csrf or ""


def workflow_of(request: Request) -> Workflow:
    wf: Workflow = request.app.state.wf
    return wf


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def settings_of(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


def is_secure(request: Request) -> bool:
    return settings_of(request).secure_cookies or request.url.scheme == "https"


def request_locale(request: Request, own: str | None = None) -> str:
    """?lang= first, then the language cookie, then the user's own setting, then Chinese."""
    return pick_locale(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), own)


def safe_local(target: str | None) -> str:
    """Only paths on this site: a crafted `next` must not send people elsewhere after signing in."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n"):
        return "/"
    return target


def here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def current_session(request: Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    try:
        with UnitOfWork(workflow_of(request).engine, read_only=True) as uow:
            session = accounts_of(request).authenticate(uow, token, kind="session")  # an API token is no session
    except NotSignedIn:
        return None
    return session if session.csrf else None


def viewer(request: Request) -> Viewer:
    """The dependency behind every signed-in page."""
    session = current_session(request)
    if session is None:
        raise LoginRequired(here(request) if request.method == "GET" else "/")
    locale = request_locale(request, session.actor.locale)
    return Viewer(session, locale, unread_count(workflow_of(request).engine, session.actor))


async def form_of(request: Request) -> FormData:
    form = await request.form(max_files=0, max_fields=300, max_part_size=64 * 1024)
    refuse_unstorable(pairs_problems(form.multi_items()))  # NUL or lone surrogates: a 422 naming the field
    return form


def checked_form(form: Annotated[FormData, Depends(form_of)], me: Annotated[Viewer, Depends(viewer)]) -> FormData:
    """The posted form, if it carries the session's CSRF value."""
    sent = form.get("csrf")
    if not isinstance(sent, str) or not me.csrf or not hmac.compare_digest(sent.encode(), me.csrf.encode()):
        raise CsrfRefused()
    return form


Me = Annotated[Viewer, Depends(viewer)]
CheckedForm = Annotated[FormData, Depends(checked_form)]
PlainForm = Annotated[FormData, Depends(form_of)]


# --- the sign-in form's CSRF: a signed random value, in a cookie and in the form -------------------
def _sign(request: Request, nonce: str) -> str:
    key = settings_of(request).secret_key.encode()
    return hmac.new(key, f"login:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def login_token(request: Request) -> str:
    existing = request.cookies.get(LOGIN_COOKIE, "")
    return existing if login_token_valid(request, existing) else _new_login_token(request)


def _new_login_token(request: Request) -> str:
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_sign(request, nonce)}"


def login_token_valid(request: Request, token: str) -> bool:
    nonce, _, signature = token.partition(".")
    return bool(nonce) and len(token) < 200 and hmac.compare_digest(signature.encode(), _sign(request, nonce).encode())


def login_form_ok(request: Request, sent: object) -> bool:
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    return (
        isinstance(sent, str)
        and login_token_valid(request, cookie)
        and hmac.compare_digest(sent.encode(), cookie.encode())
    )


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=is_secure(request)
    )


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    set_cookie(request, response, SESSION_COOKIE, token, int(settings_of(request).token_ttl.total_seconds()))


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=is_secure(request))


# --- rendering -------------------------------------------------------------------------------------
def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["day"] = day
    return Jinja2Templates(env=env)


def when(iso: str | None) -> str:
    """An ISO instant as Shanghai wall-clock time, to the minute."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def day(iso: str | None) -> str:
    return datetime.fromisoformat(iso).astimezone(SHANGHAI).strftime("%m-%d %H:%M") if iso else ""


def span(seconds: int | None, locale: str) -> str:
    """Working time for people: "3小时05分" / "3h 05m"."""
    if seconds is None:
        return ""
    rest = abs(int(seconds))
    hours, minutes = rest // 3600, rest % 3600 // 60
    return f"{hours}小时{minutes:02d}分" if locale != "en" else f"{hours}h {minutes:02d}m"


def limit_text(text: str | None, locale: str) -> str:
    """A definition's time limit ("5d", "4h") in words: working days and working hours."""
    if not text:
        return ""
    try:
        duration = WorkingDuration.parse(text)
    except ValueError:
        return text
    hours, minutes = divmod(duration.minutes, 60)
    if locale == "en":
        parts = [f"{duration.days} working day{'s' if duration.days != 1 else ''}" if duration.days else ""]
        parts += [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
        return " ".join(p for p in parts if p)
    parts = [f"{duration.days}个工作日" if duration.days else "", f"{hours}小时" if hours else ""]
    return "".join(parts) + (f"{minutes}分钟" if minutes else "")


def nav_for(role: str) -> list[tuple[str, str]]:
    items = []
    if role in DASHBOARD_ROLES and role in SUPERVISOR_ROLES:
        items.append(("/dashboard", "nav.dashboard"))
    if role in WORKLIST_ROLES:
        items.append(("/worklist", "nav.worklist"))
    if role in PORTAL_ROLES:
        items.append(("/portal", "nav.portal"))
    if role in DASHBOARD_ROLES and role not in SUPERVISOR_ROLES:
        items.append(("/dashboard", "nav.dashboard"))
    items.append(("/inbox", "nav.inbox"))
    return items


def home_of(role: str) -> str:
    if role == Role.ENTERPRISE_CONTACT:
        return "/portal"
    if role in SUPERVISOR_ROLES:
        return "/dashboard"
    return "/worklist"


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    me: Viewer | None = None,
    locale: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    locale = locale or (me.locale if me else request_locale(request))
    other = "en" if locale != "en" else "zh-CN"

    def words(key: str, **values: object) -> str:
        return t(key, locale, **values)

    def titled(table: str, value: str | None) -> str:
        return title_of(table, value, locale)

    page = {
        "request": request,
        "me": me,
        "locale": locale,
        "_": words,
        "tt": titled,
        "span": lambda seconds: span(seconds, locale),
        "limit": lambda text: limit_text(text, locale),
        "nav": nav_for(me.actor.role) if me else [],
        "path": request.url.path,
        "switch_url": request.url.path + "?" + urlencode({**request.query_params, "lang": other}),
        "switch_label": t("nav.language", locale),
        "other_locale": other,
        "sign_in_notice": _sign_in_notice(request, me, locale),
        **context,
    }
    templates: Jinja2Templates = request.app.state.page_templates
    response = templates.TemplateResponse(request, template, page, status_code=status)
    for name, value in {**SECURITY_HEADERS, "Content-Language": locale, **(headers or {})}.items():
        response.headers[name] = value
    if me is not None and FAILURES_COOKIE in request.cookies:
        clear_cookie(request, response, FAILURES_COOKIE)  # told once
    chosen = request.query_params.get("lang")
    if chosen in LOCALES:
        set_cookie(request, response, LANG_COOKIE, chosen, int(timedelta(days=365).total_seconds()))
    return response


def _sign_in_notice(request: Request, me: Viewer | None, locale: str) -> str:
    count = request.cookies.get(FAILURES_COOKIE, "")
    if me is None or not count.isdigit() or int(count) < 1 or len(count) > 9:
        return ""
    attempts = "attempt" if count == "1" else "attempts"
    return t("login.failures_since", locale, count=int(count), attempts=attempts)


def see_other(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- form values -----------------------------------------------------------------------------------
def text_of(form: FormData, name: str, limit: int = 10_000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


MAX_TEXT = 4000  # comments, reasons, notes: as the API's request models allow


def long_text_of(form: FormData, name: str, limit: int = MAX_TEXT) -> tuple[str, str | None]:
    """A free-text field whole, as typed, and the API's own refusal when it is longer than the API allows:
    a page refuses such text as the API does, keeping it in the form, instead of cutting it."""
    value = form.get(name)
    text = value if isinstance(value, str) else ""
    return text, (f"String should have at most {limit} characters" if len(text) > limit else None)


def form_values(fields: Sequence[Mapping[str, Any]], form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """Field values as the engine takes them (the engine checks them), and as typed (to show them again).

    Blank inputs are left out, so the engine names them as missing; an unticked box is false;
    a datetime-local input has no offset, and the pages are in Shanghai time.
    """
    data: dict[str, Any] = {}
    typed: dict[str, Any] = {}
    for field in fields:
        name, kind = str(field["name"]), str(field["type"])
        if kind == "boolean":
            data[name] = typed[name] = form.get(name) in ("on", "true", "1")
            continue
        if kind == "multichoice":
            chosen = [v for v in form.getlist(name) if isinstance(v, str)]
            typed[name] = chosen
            if chosen:
                data[name] = chosen
            continue
        raw = form.get(name)
        if raw is None or isinstance(raw, UploadFile):
            continue
        typed[name] = raw
        value = raw.strip()
        if not value:
            continue
        if kind == "datetime" and _LOCAL_DATETIME.match(value):
            value += "+08:00"
        data[name] = value
    return data, typed


def input_value(field: Mapping[str, Any], value: Any) -> str:
    """A stored value in the form an <input> of that field type shows."""
    if value is None:
        return ""
    if field["type"] == "datetime" and isinstance(value, str) and "T" in value:
        try:
            return datetime.fromisoformat(value).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")
        except ValueError:
            return value
    return str(value)


def running_for(wf: Workflow, now: datetime) -> int:
    """Seconds until the current working period ends (0 outside office hours): how long a
    countdown of working time may tick in the browser before it must stand still."""
    local = now.astimezone(SHANGHAI)
    calendar = wf.planner.calendar
    if not calendar.is_working_day(local.date()):
        return 0
    for start, end in calendar.hours.periods:
        if start <= local.time() < end:
            finish = datetime.combine(local.date(), end, tzinfo=SHANGHAI)
            return int((finish - local).total_seconds())
    return 0


def localise_units(wf: Workflow, appeals: list[dict[str, Any]], locale: str) -> None:
    """Appeal views name units in Chinese; English pages use the units' English names."""
    if locale != "en" or not appeals:
        return
    with UnitOfWork(wf.engine, read_only=True) as uow:
        names = unit_names(uow)
    for appeal in appeals:
        pair = names.get(appeal["unit"]["code"] or "")
        if pair:
            appeal["unit"]["name"] = pair[1]


URGENCY = {"breached": 0, "at_risk": 1, "on_track": 2, "paused": 3, "stopped": 4}


def urgency(appeal: dict[str, Any]) -> tuple[int, datetime, str]:
    """Breached first, then at risk, then the rest; within each, the nearest due instant first."""
    sla = appeal.get("sla") or {}
    due = sla.get("due_at")
    return (
        URGENCY.get(sla.get("status", ""), 5),
        datetime.fromisoformat(due) if due else datetime.max.replace(tzinfo=UTC),
        appeal["number"],
    )
