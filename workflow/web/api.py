"""REST API under /api/v1: every route signs the caller in by bearer token and acts as them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field

from notifications.inbox import inbox_view, mark_read
from workflow.domain.org import SUPERVISOR_ROLES, Role
from workflow.errors import NotPermitted
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import Accounts, NotSignedIn, Session
from workflow.services.workflow import Workflow
from workflow.web.errors import ErrorBody

router = APIRouter(prefix="/api/v1")
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 429)}


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


def workflow(request: Request) -> Workflow:
    wf: Workflow = request.app.state.wf
    return wf


def accounts(request: Request) -> Accounts:
    acc: Accounts = request.app.state.accounts
    return acc


def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Session:
    """The signed-in user behind `Authorization: Bearer TOKEN`."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotSignedIn("send Authorization: Bearer TOKEN (POST /api/v1/auth/token gives one)")
    wf = workflow(request)
    with UnitOfWork(wf.engine, read_only=True) as uow:
        return accounts(request).authenticate(uow, token.strip())


Caller = Annotated[Session, Depends(caller)]
WF = Annotated[Workflow, Depends(workflow)]


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


@router.delete("/auth/token", status_code=204, responses=ERRORS, tags=["auth"])
def revoke_token(request: Request, wf: WF, me: Caller, authorization: Annotated[str | None, Header()] = None) -> None:
    with UnitOfWork(wf.engine) as uow:
        accounts(request).revoke(uow, (authorization or "").partition(" ")[2].strip())
        uow.commit()


@router.get("/me", responses=ERRORS, tags=["auth"])
def whoami(me: Caller) -> dict[str, Any]:
    actor = me.actor
    return {
        "username": actor.username,
        "display_name": actor.display_name,
        "role": actor.role,
        "locale": actor.locale,
        "enterprise_id": actor.enterprise_id,
    }


@router.get("/appeal-types", responses=ERRORS, tags=["appeals"])
def appeal_types(wf: WF, me: Caller) -> list[dict[str, Any]]:
    return wf.definitions(locale=me.actor.locale)


@router.post("/appeals", status_code=201, responses=ERRORS, tags=["appeals"])
def submit_appeal(body: AppealCreate, wf: WF, me: Caller) -> dict[str, Any]:
    appeal = wf.submit(
        body.type, enterprise_id=body.enterprise_id, as_user=me.actor.username, data=body.data, channel=body.channel
    )
    return _with_actions(wf, appeal, me)


@router.get("/appeals", responses=ERRORS, tags=["appeals"])
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


@router.get("/appeals/{number}", responses=ERRORS, tags=["appeals"])
def show_appeal(number: str, wf: WF, me: Caller) -> dict[str, Any]:
    return _with_actions(wf, wf.show(number, as_user=me.actor.username, locale=me.actor.locale), me)


@router.post("/appeals/{number}/actions/{trigger}", responses=ERRORS, tags=["appeals"])
def fire(number: str, trigger: str, body: ActionRequest, wf: WF, me: Caller) -> dict[str, Any]:
    wf.fire(
        number,
        trigger,
        as_user=me.actor.username,
        comment=body.comment,
        data=body.data,
        expected_version=body.expected_version,
    )
    return _with_actions(wf, wf.show(number, as_user=me.actor.username, locale=me.actor.locale), me)


@router.post("/appeals/{number}/escalate", responses=ERRORS, tags=["appeals"])
def escalate(number: str, body: MoveRequest, wf: WF, me: Caller) -> dict[str, Any]:
    wf.escalate(number, as_user=me.actor.username, reason=body.reason, expected_version=body.expected_version)
    return wf.show(number, locale=me.actor.locale)


@router.post("/appeals/{number}/send-down", responses=ERRORS, tags=["appeals"])
def send_down(number: str, body: MoveRequest, wf: WF, me: Caller) -> dict[str, Any]:
    wf.send_down(number, as_user=me.actor.username, instructions=body.reason, expected_version=body.expected_version)
    return wf.show(number, locale=me.actor.locale)


@router.post("/appeals/{number}/assign", responses=ERRORS, tags=["appeals"])
def assign(number: str, body: AssignRequest, wf: WF, me: Caller) -> dict[str, Any]:
    wf.assign(
        number, body.username, as_user=me.actor.username, comment=body.comment, expected_version=body.expected_version
    )
    return wf.show(number, locale=me.actor.locale)


@router.get("/appeals/{number}/history", responses=ERRORS, tags=["appeals"])
def history(number: str, wf: WF, me: Caller) -> list[dict[str, Any]]:
    return wf.history(number, as_user=me.actor.username)


@router.post("/appeals/{number}/comments", status_code=201, responses=ERRORS, tags=["appeals"])
def comment(number: str, body: CommentCreate, wf: WF, me: Caller) -> dict[str, Any]:
    version = wf.comment(number, body.text, as_user=me.actor.username)
    return {"number": number, "version": version, "comment": body.text.strip()}


@router.get("/sla/summary", responses=ERRORS, tags=["supervision"])
def sla_summary(wf: WF, me: Caller, unit: Annotated[str | None, Query(max_length=32)] = None) -> dict[str, Any]:
    """Counts per level and unit in the caller's jurisdiction, with response and resolution rates."""
    actor = me.actor
    if actor.role not in SUPERVISOR_ROLES | {Role.BUILDING_STAFF, Role.BUREAU_OFFICER}:
        raise NotPermitted(f"the SLA summary is for supervisors; user {actor.username!r} has role {actor.role!r}")
    scope_code = wf.unit_code_of_path(actor.scope_path)
    if unit is not None and not wf.unit_within(unit, actor.scope_path):
        raise NotPermitted(f"unit {unit!r} is outside the jurisdiction of user {actor.username!r}")
    return wf.sla_report(unit=unit or scope_code)


@router.get("/inbox", responses=ERRORS, tags=["notices"])
def inbox(wf: WF, me: Caller, unread: bool = False, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """The caller's in-app notices, newest first, with the unread count."""
    return inbox_view(wf.engine, me.actor, unread_only=unread, limit=limit)


@router.post("/inbox/read", responses=ERRORS, tags=["notices"])
def read_notices(body: ReadRequest, wf: WF, me: Caller) -> dict[str, int]:
    return mark_read(wf.engine, wf.clock, me.actor, body.ids)


def _with_actions(wf: Workflow, appeal: dict[str, Any], me: Session) -> dict[str, Any]:
    appeal["actions"] = wf.actions(appeal["number"], as_user=me.actor.username, locale=me.actor.locale)
    return appeal
