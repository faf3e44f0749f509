"""REST API under /api/v1: every route but signing in takes the caller's bearer token and acts as them."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from notifications.inbox import inbox_view, mark_read
from workflow.domain.authorization import SUMMARY_ROLES
from workflow.errors import NotPermitted
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import Accounts, NotSignedIn, Session
from workflow.services.workflow import Workflow
from workflow.web.errors import ErrorBody, InvalidToken
from workflow.web.request_text import UnstorableText


def _error(description: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    declared: dict[str, Any] = {"model": ErrorBody, "description": description}
    if headers:
        declared["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return declared


# Every error answer has the one shape of ErrorBody; each operation declares them all.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The body is not JSON at all (`invalid_request`, the reason in `details`)."),
    401: _error(
        "No valid bearer token (`not_signed_in`), or a wrong username or password (`sign_in_failed`).",
        {
            "WWW-Authenticate": '`Bearer`; `Bearer error="invalid_token", error_description="..."` when the token '
            "sent is unknown, revoked or expired"
        },
    ),
    403: _error("The caller's role or jurisdiction does not allow it (`forbidden`)."),
    404: _error("No such appeal, type, user or unit; an appeal outside the caller's jurisdiction looks the same."),
    409: _error("A version conflict or a trigger not possible now (`details.allowed`)."),
    413: _error("The body is larger than `APPEALS_MAX_BODY_BYTES` allows (`body_too_large`), refused unread."),
    422: _error(
        "Fields that do not fit, each named in `details` (`invalid_request`, `invalid_fields`, ...), text with NUL "
        "or a lone surrogate among them."
    ),
    429: _error("Too many failed sign-ins (`too_many_attempts`).", {"Retry-After": "seconds until trying again"}),
}


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: str
    username: str
    role: str


class AppealCreate(BaseModel):
    type: str = Field(min_length=1, max_length=64)
    enterprise_id: int = Field(ge=1, le=2**31 - 1)
    data: dict[str, Any] = Field(default_factory=dict)
    channel: str = "online"


class ActionRequest(BaseModel):
    comment: str | None = Field(default=None, max_length=4000)
    data: dict[str, Any] = Field(default_factory=dict)
    expected_version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class CommentCreate(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class MoveRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)
    expected_version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class AssignRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    comment: str | None = Field(default=None, max_length=4000)
    expected_version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class ReadRequest(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=500)


# --- answers: every listed key is always there (but `choice_titles`, `min_length`, `max_length`, `min`, `max` of a
# form field, present only when the definition sets them); keys added later pass through (additionalProperties).
class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class FormField(Answer):
    name: str
    type: str
    required: bool
    title: str
    choices: list[str]
    choice_titles: dict[str, str] | None = None  # choice -> title in the caller's language, when the type gives them
    min_length: int | None = None
    max_length: int | None = None
    min: int | float | None = None
    max: int | float | None = None


class Action(Answer):
    """Something the caller may do now, with what it requires: a definition's trigger (`kind` "transition", POST
    .../actions/{trigger}), a chain move (`kind` "chain": `escalate` and `send_down`, whose required comment is the
    body's `reason` and which name the `level` they lead to; `assign`, whose required `username` is one of
    `targets`), or `comment`. `trigger` repeats `action`."""

    action: str
    kind: str
    trigger: str
    title: str
    sources: list[str]
    dest: str
    roles: list[str]
    guards: list[str]
    required_fields: list[str]
    fields: list[FormField]
    comment_required: bool


class UnitRef(Answer):
    id: int
    code: str | None
    name: str | None


class EnterpriseRef(Answer):
    id: int
    name: str
    credit_code: str | None = Field(description="统一社会信用代码 (unified social credit code), 18 characters")


class DefinitionRef(Answer):
    name: str
    version: int


class WorkingTime(Answer):
    seconds: int
    text: str


class Breach(Answer):
    """A time limit that ran out at a level: its due instant, and how late a sweep found it."""

    level: str
    unit_id: int
    clock: str
    due_at: str
    detected_at: str
    late: WorkingTime


class Sla(Answer):
    """Times are ISO 8601 with the Shanghai offset."""

    status: str
    clock: str
    due_at: str | None
    at_risk_at: str | None
    state_due_at: str | None
    overall_due_at: str | None
    working_time_left: WorkingTime | None
    overall_used: WorkingTime | None
    breached_at: str | None
    breaches: list[Breach]
    breached_earlier_at: str | None
    provisional: bool
    first_response_at: str | None
    decided_at: str | None


class Appeal(Answer):
    number: str
    type: str
    type_title: str
    definition: DefinitionRef
    state: str
    state_title: str
    is_open: bool
    level: str
    unit: UnitRef
    enterprise: EnterpriseRef
    assignee: str | None
    submitted_by: str | None
    channel: str
    data: dict[str, Any]
    version: int
    created_at: str
    updated_at: str
    closed_at: str | None
    sla: Sla | None


class AppealWithActions(Appeal):
    actions: list[Action] = Field(description="everything the caller may do now, with what each requires")


class AppealPage(Answer):
    total: int
    page: int
    page_size: int
    appeals: list[Appeal]


class Event(Answer):
    id: int
    version: int
    at: str
    actor: str | None
    kind: str
    trigger: str | None
    from_: str | None = Field(alias="from")
    to: str | None
    comment: str | None
    payload: dict[str, Any]


class CommentAdded(Answer):
    number: str
    version: int
    comment: str


class FailedSignIn(Answer):
    at: str
    address: str


class SignInHistory(Answer):
    """Failed attempts on the caller's account since the sign-in before their latest one (times in +08:00)."""

    previous_at: str | None
    previous_address: str | None
    failed_attempts_since_previous: int
    recent_failures: list[FailedSignIn] = Field(description="newest first, at most 20")


class Me(Answer):
    username: str
    display_name: str
    role: str
    locale: str
    enterprise_id: int | None
    sign_in: SignInHistory


class Notice(Answer):
    id: int
    kind: str
    subject: str
    text: str
    created_at: str
    read: bool
    email: str
    number: str | None


class Inbox(Answer):
    unread: int
    notices: list[Notice]


class ReadResult(Answer):
    marked: int
    unread: int


def workflow(request: Request) -> Workflow:
    wf: Workflow = request.app.state.wf
    return wf


def accounts(request: Request) -> Accounts:
    acc: Accounts = request.app.state.accounts
    return acc


bearer = HTTPBearer(
    scheme_name="bearer",
    description="The `access_token` of `POST /api/v1/auth/token`, sent as `Authorization: Bearer TOKEN`.",
    auto_error=False,  # the 401 is ours: the one error shape, with WWW-Authenticate
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    return credentials.credentials.strip() if credentials is not None else ""


def caller(request: Request, credentials: Credentials) -> Session:
    """The signed-in user behind `Authorization: Bearer TOKEN`."""
    token = _token(credentials)
    if not token:
        raise NotSignedIn("send Authorization: Bearer TOKEN (POST /api/v1/auth/token gives one)")
    wf = workflow(request)
    try:
        with UnitOfWork(wf.engine, read_only=True) as uow:
            return accounts(request).authenticate(uow, token, kind="api")  # a session cookie is no bearer token
    except NotSignedIn as exc:
        raise InvalidToken(str(exc)) from exc


Caller = Annotated[Session, Depends(caller)]
WF = Annotated[Workflow, Depends(workflow)]


class SignedInFirst(APIRoute):
    """FastAPI reads the body before it runs dependencies, so a body that is not JSON would be reported before a
    missing token is. On the routes that need a token, check it first: without one the caller learns nothing."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not any(dependency.call is caller for dependency in self.dependant.dependencies):
            return handler

        async def signed_in_first(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                if any(e.get("type") == "json_invalid" for e in exc.errors()):
                    await run_in_threadpool(caller, request, await bearer(request))
                raise
            except UnstorableText:
                await run_in_threadpool(caller, request, await bearer(request))
                raise
            except StarletteHTTPException as exc:
                if exc.status_code == 400:
                    await run_in_threadpool(caller, request, await bearer(request))
                raise

        return signed_in_first


router = APIRouter(prefix="/api/v1", route_class=SignedInFirst)


@router.post("/auth/token", response_model=TokenResponse, responses=ERRORS, tags=["auth"])
def issue_token(body: TokenRequest, request: Request, wf: WF) -> TokenResponse:
    address = request.client.host if request.client else "unknown"
    with UnitOfWork(wf.engine) as uow:
        token, session = accounts(request).sign_in(uow, body.username, body.password, address)
        uow.commit()
    return TokenResponse(
        access_token=token,
        expires_at=session.expires_at.isoformat(),
        username=session.actor.username,
        role=session.actor.role,
    )


@router.delete("/auth/token", status_code=204, response_class=Response, responses=ERRORS, tags=["auth"])
def revoke_token(request: Request, wf: WF, me: Caller, credentials: Credentials) -> None:
    with UnitOfWork(wf.engine) as uow:
        accounts(request).revoke(uow, _token(credentials))
        uow.commit()


@router.get("/me", response_model=Me, responses=ERRORS, tags=["auth"])
def whoami(request: Request, wf: WF, me: Caller) -> dict[str, Any]:
    """Who the token belongs to, and the failed sign-ins on their account since their previous sign-in."""
    actor = me.actor
    with UnitOfWork(wf.engine, read_only=True) as uow:
        history = accounts(request).sign_in_history(uow, me)
    return {
        "username": actor.username,
        "display_name": actor.display_name,
        "role": actor.role,
        "locale": actor.locale,
        "enterprise_id": actor.enterprise_id,
        "sign_in": history,
    }


@router.get("/appeal-types", responses=ERRORS, tags=["appeals"])
def appeal_types(wf: WF, me: Caller) -> list[dict[str, Any]]:
    return wf.definitions(locale=me.actor.locale)


@router.post(
    "/appeals",
    status_code=201,
    response_model=AppealWithActions,
    response_model_exclude_unset=True,
    responses=ERRORS,
    tags=["appeals"],
)
def submit_appeal(body: AppealCreate, wf: WF, me: Caller) -> dict[str, Any]:
    appeal = wf.submit(
        body.type, enterprise_id=body.enterprise_id, as_user=me.actor.username, data=body.data, channel=body.channel
    )
    return _after_change(wf, str(appeal["number"]), me)


@router.get(
    "/appeals", response_model=AppealPage, response_model_exclude_unset=True, responses=ERRORS, tags=["appeals"]
)
def list_appeals(
    wf: WF,
    me: Caller,
    state: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    level: Annotated[str | None, Query(max_length=16)] = None,
    unit: Annotated[str | None, Query(max_length=32)] = None,
    assignee: Annotated[str | None, Query(max_length=64, description="a username, or `me`")] = None,
    overdue: bool = False,
    at_risk: bool = False,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """A page of the appeals the caller may see, newest first, with the total."""
    holder = me.actor.username if assignee == "me" else assignee
    items, total = wf.list_appeals(
        as_user=me.actor.username,
        state=state,
        type=type,
        level=level,
        unit=unit,
        assignee=holder,
        overdue=overdue,
        at_risk=at_risk,
        limit=page_size,
        offset=(page - 1) * page_size,
        locale=me.actor.locale,
    )
    return {"total": total, "page": page, "page_size": page_size, "appeals": items}


@router.get(
    "/appeals/{number}",
    response_model=AppealWithActions,
    response_model_exclude_unset=True,
    responses=ERRORS,
    tags=["appeals"],
)
def show_appeal(number: str, wf: WF, me: Caller) -> dict[str, Any]:
    return wf.show_with_actions(number, as_user=me.actor.username, locale=me.actor.locale)


@router.get(
    "/appeals/{number}/actions",
    response_model=list[Action],
    response_model_exclude_unset=True,
    responses=ERRORS,
    tags=["appeals"],
)
def appeal_actions(number: str, wf: WF, me: Caller) -> list[dict[str, Any]]:
    """Everything the caller may do on the appeal now (the `actions` of the appeal, and of `appeals case actions`)."""
    return wf.actions(number, as_user=me.actor.username, locale=me.actor.locale)


@router.post(
    "/appeals/{number}/actions/{trigger}",
    response_model=AppealWithActions,
    response_model_exclude_unset=True,
    responses=ERRORS,
    tags=["appeals"],
)
def fire(number: str, trigger: str, body: ActionRequest, wf: WF, me: Caller) -> dict[str, Any]:
    wf.fire(
        number,
        trigger,
        as_user=me.actor.username,
        comment=body.comment,
        data=body.data,
        expected_version=body.expected_version,
    )
    return _after_change(wf, number, me)


@router.post(
    "/appeals/{number}/escalate",
    response_model=AppealWithActions,
    response_model_exclude_unset=True,
    responses=ERRORS,
    tags=["appeals"],
)
def escalate(number: str, body: MoveRequest, wf: WF, me: Caller) -> dict[str, Any]:
    wf.escalate(number, as_user=me.actor.username, reason=body.reason, expected_version=body.expected_version)
    return _after_change(wf, number, me)


@router.post(
    "/appeals/{number}/send-down",
    response_model=AppealWithActions,
    response_model_exclude_unset=True,
    responses=ERRORS,
    tags=["appeals"],
)
def send_down(number: str, body: MoveRequest, wf: WF, me: Caller) -> dict[str, Any]:
    wf.send_down(number, as_user=me.actor.username, instructions=body.reason, expected_version=body.expected_version)
    return _after_change(wf, number, me)


@router.post(
    "/appeals/{number}/assign",
    response_model=AppealWithActions,
    response_model_exclude_unset=True,
    responses=ERRORS,
    tags=["appeals"],
)
def assign(number: str, body: AssignRequest, wf: WF, me: Caller) -> dict[str, Any]:
    wf.assign(
        number, body.username, as_user=me.actor.username, comment=body.comment, expected_version=body.expected_version
    )
    return _after_change(wf, number, me)


@router.get(
    "/appeals/{number}/history",
    response_model=list[Event],
    response_model_exclude_unset=True,
    responses=ERRORS,
    tags=["appeals"],
)
def history(number: str, wf: WF, me: Caller) -> list[dict[str, Any]]:
    return wf.history(number, as_user=me.actor.username)


@router.post(
    "/appeals/{number}/comments", status_code=201, response_model=CommentAdded, responses=ERRORS, tags=["appeals"]
)
def comment(number: str, body: CommentCreate, wf: WF, me: Caller) -> dict[str, Any]:
    version = wf.comment(number, body.text, as_user=me.actor.username)
    return {"number": number, "version": version, "comment": body.text.strip()}


@router.get("/sla/summary", responses=ERRORS, tags=["supervision"])
def sla_summary(wf: WF, me: Caller, unit: Annotated[str | None, Query(max_length=32)] = None) -> dict[str, Any]:
    """Counts per level and unit in the caller's jurisdiction, with response and resolution rates."""
    actor = me.actor
    if actor.role not in SUMMARY_ROLES:
        raise NotPermitted(f"the SLA summary is for supervisors; user {actor.username!r} has role {actor.role!r}")
    scope_code = wf.unit_code_of_path(actor.scope_path)
    if unit is not None and not wf.unit_within(unit, actor.scope_path):
        raise NotPermitted(f"unit {unit!r} is outside the jurisdiction of user {actor.username!r}")
    return wf.sla_report(unit=unit or scope_code, as_user=actor.username)


@router.get("/inbox", response_model=Inbox, response_model_exclude_unset=True, responses=ERRORS, tags=["notices"])
def inbox(wf: WF, me: Caller, unread: bool = False, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """The caller's in-app notices, newest first, with the unread count."""
    return inbox_view(wf.engine, me.actor, unread_only=unread, limit=limit)


@router.post("/inbox/read", response_model=ReadResult, responses=ERRORS, tags=["notices"])
def read_notices(body: ReadRequest, wf: WF, me: Caller) -> dict[str, int]:
    return mark_read(wf.engine, wf.clock, me.actor, body.ids)


def _after_change(wf: Workflow, number: str, me: Session) -> dict[str, Any]:
    """The appeal as the change left it, with what the caller may do next: nothing, should the change have put it
    out of their reach (a 404 after a change that went through would invite a retry)."""
    return wf.show_with_actions(number, as_user=me.actor.username, locale=me.actor.locale, after_change=True)
