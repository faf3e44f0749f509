"""The appeal page: form data, the materials checklist, the actions for exactly the triggers the user
may fire (each opening the fields it needs), comments, the timeline, the time-limit clock and the
definition drawn as a diagram; and the POSTs that act on the appeal. A refused POST redirects (303) back to
the appeal page, which shows the engine's objection beside the fields it concerns with what was typed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from starlette.datastructures import FormData

from workflow.domain.guards import GUARDS
from workflow.domain.spec import AppealDefinition, FieldSpec, FieldType, pick_title
from workflow.errors import (
    AppealNotFound,
    CommentRequired,
    FormInvalid,
    GuardRejected,
    NotFound,
    OutsideJurisdiction,
    VersionConflict,
    WorkflowError,
)
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.page_flashes import flash_for, keep_flash
from workflow.services.workflow import Workflow
from workflow.web.diagram import state_diagram
from workflow.web.errors import status_of
from workflow.web.i18n import field_message, guard_message, problem_message, system_reason, t, title_of
from workflow.web.page_support import (
    CheckedForm,
    Me,
    Viewer,
    form_values,
    input_value,
    localise_units,
    long_text_of,
    render,
    running_for,
    see_other,
    text_of,
    when,
    workflow_of,
)

router = APIRouter(include_in_schema=False)


def _files_of(request: Request, number: str, user: str, locale: str) -> dict[str, Any]:
    """The checklist with each item's files, and the files tied to no item, with page download links."""
    from workflow.web.attachment_routes import attachments_of  # the routes import this module

    files = attachments_of(request)
    checklist = files.checklist(number, as_user=user)
    linked = {f["id"] for item in checklist for f in item["files"]}
    for item in checklist:
        item["title"] = pick_title(item["title"], locale)
    loose = [f for f in files.files(number, as_user=user) if f["id"] not in linked]
    for f in [*loose, *(f for item in checklist for f in item["files"])]:
        f["page_url"] = f"/appeals/{quote(number)}/files/{f['id']}"
    return {"checklist": checklist, "loose": loose}


def _spec_of(wf: Workflow, number: str) -> AppealDefinition:
    record = wf.record(number)
    with UnitOfWork(wf.engine, read_only=True) as uow:
        return wf.registry.get(uow, record.definition_id).spec


def _fields_of(spec: AppealDefinition) -> dict[str, FieldSpec]:
    """Every field an appeal's data can hold: the form's and those its transitions collect."""
    fields = {f.name: f for t_ in spec.transitions for f in t_.fields}
    fields.update({f.name: f for f in spec.fields})
    return fields


def _shown(field: FieldSpec | None, value: Any, locale: str) -> str:
    """A stored value as people read it: yes/no, a choice's title, a time in Shanghai to the minute."""
    titles = field.choice_titles if field is not None else {}

    def choice(item: Any) -> str:
        return pick_title(titles[item], locale) if item in titles else str(item)

    if isinstance(value, bool):
        return t("appeal.yes" if value else "appeal.no", locale)
    if isinstance(value, list):
        return ("、" if locale != "en" else ", ").join(map(choice, value))
    if field is not None and field.type is FieldType.DATETIME and isinstance(value, str):
        return when(value)
    return choice(value)


def _facts(fields: dict[str, FieldSpec], data: dict[str, Any], locale: str) -> list[tuple[str, str]]:
    def title(name: str) -> str:
        return pick_title(fields[name].title, locale) if name in fields else name

    return [(title(name), _shown(fields.get(name), value, locale)) for name, value in data.items()]


def _timeline(history: list[dict[str, Any]], spec: AppealDefinition, locale: str) -> list[dict[str, Any]]:
    fields = _fields_of(spec)
    items = []
    for event in history:
        kind, what, to = event["kind"], title_of("event", event["kind"], locale), ""
        if kind == "fired":
            transition = spec.transition(event["from"], event["trigger"]) if event["from"] else None
            what = pick_title(transition.title, locale) if transition else str(event["trigger"])
        if kind in ("submitted", "fired") and event["to"] in spec.states:
            to = pick_title(spec.states[event["to"]].title, locale)
        if kind in ("escalated", "sent_down"):
            to = title_of("level", event["payload"].get("level"), locale)
        data = event["payload"].get("data") if kind == "fired" else None
        items.append(
            {
                **event,
                "what": what,
                "to_title": to,
                "data": _facts(fields, data or {}, locale),
                # The sweeper writes its reasons for scripts, in English; people read them in their language.
                "comment": system_reason(event["comment"], locale) if event["actor"] is None else event["comment"],
            }
        )
    return items


def _failure(trigger: str, typed: dict[str, Any], comment: str, exc: WorkflowError, locale: str) -> dict[str, Any]:
    problems: dict[str, str] = {}
    if isinstance(exc, FormInvalid):
        problems = {p.field: problem_message(p, locale) for p in exc.problems}
        message = t("portal.fix", locale)
    elif isinstance(exc, CommentRequired):
        problems = {"comment": t("form.is_required", locale)}
        message = t("portal.fix", locale)
    elif isinstance(exc, VersionConflict):
        message = t("error.409", locale)
    elif isinstance(exc, GuardRejected) and exc.guard in GUARDS:
        guard = GUARDS[exc.guard]
        explanation = guard_message(guard.name, guard.explanation, locale)
        problems = dict.fromkeys(guard.reads, explanation)  # shown at the fields the guard read
        message = t("appeal.action_failed", locale) + explanation
    else:
        message = t("appeal.action_failed", locale) + str(exc)
    return {"trigger": trigger, "values": typed, "comment": comment, "problems": problems, "message": message}


def _appeal_page(
    request: Request,
    me: Viewer,
    number: str,
    *,
    flash: str | None = None,
    done: str | None = None,
    failed: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    wf = workflow_of(request)
    user, locale = me.actor.username, me.locale
    appeal = wf.show_with_actions(number, as_user=user, locale=locale)  # the jurisdiction check: 404 otherwise
    localise_units(wf, [appeal], locale)
    # Exactly the list of workflow.domain.authorization.available_actions: the definition's triggers as forms,
    # then the chain's moves and the comment box, each shown only when listed.
    listed = appeal.pop("actions")
    actions = [a for a in listed if a["kind"] == "transition"]
    chain = {a["action"]: a for a in listed if a["kind"] != "transition"}
    history = wf.history(number, as_user=user)
    spec = _spec_of(wf, number)
    done_titles = {tr.trigger: pick_title(tr.title, locale) for tr in spec.transitions}
    if done in done_titles:
        flash = t("appeal.done", locale, action=done_titles[done])
    data = appeal["data"]
    # The form's own fields in the definition's order, then what the steps collected.
    ordered = {f.name: data[f.name] for f in spec.fields if f.name in data} | data
    form = _facts(_fields_of(spec), ordered, locale)
    entered = next((e for e in reversed(history) if e["kind"] == "fired" and e["to"] == appeal["state"]), None)
    up, down = chain.get("escalate"), chain.get("send_down")
    candidates = chain["assign"]["targets"] if "assign" in chain else []
    for action in actions:
        values = failed["values"] if failed and failed["trigger"] == action["trigger"] else {}
        action["inputs"] = {f["name"]: input_value(f, values.get(f["name"])) for f in action["fields"]}
        action["checked"] = {f["name"]: values.get(f["name"]) or [] for f in action["fields"]}
    context = {
        "appeal": appeal,
        "actions": actions,
        "form": form,
        "materials": [pick_title(m.title, locale) for m in spec.materials],
        "files": _files_of(request, number, user, locale),
        "materials_done": data.get("materials_complete") is True,
        "comments": [e for e in history if e["kind"] == "commented"],
        "timeline": _timeline(history, spec, locale)[::-1],
        "instruction": entered["comment"] if entered and entered["comment"] else None,
        "diagram": Markup(
            state_diagram(spec, current=appeal["state"], visited={e["to"] for e in history if e["to"]}, locale=locale)
        ),
        "may_escalate": up is not None,
        "next_level": title_of("level", up["level"], locale) if up else "",
        "may_send_down": down is not None,
        "lower_level": title_of("level", down["level"], locale) if down else "",
        "candidates": candidates,
        "may_comment": "comment" in chain,
        "flash": flash,
        "failed": failed,
        "running_for": running_for(wf, wf.clock.now()),
    }
    return render(request, "appeal.html", context, me=me, status=status)


def _refused(request: Request, me: Viewer, number: str, failed: dict[str, Any], status: int) -> Response:
    """Answer a refused POST with 303 to the appeal page, which shows the objection and what was typed: the
    browser ends on a GET page, so a refresh reloads it instead of posting again."""
    wf = workflow_of(request)
    page = f"/appeals/{number}"
    key = keep_flash(wf.engine, wf.clock, user_id=me.actor.id, page=page, payload={"failed": failed, "status": status})
    return see_other(f"/appeals/{quote(number)}?{urlencode({'refused': key})}")


@router.get("/appeals/{number}")
def appeal_page(
    request: Request,
    number: str,
    me: Me,
    done: str | None = None,
    submitted: str | None = None,
    refused: str | None = None,
) -> Response:
    if refused:
        wf = workflow_of(request)
        kept = flash_for(wf.engine, wf.clock, key=refused, user_id=me.actor.id, page=f"/appeals/{number}")
        if kept is not None:
            return _appeal_page(request, me, number, failed=kept["failed"], status=int(kept["status"]))
    flash = None
    if submitted:
        flash = t("portal.submitted", me.locale, number=number)
    elif done == "comment":
        flash = t("appeal.commented", me.locale)
    elif done == "file":
        flash = t("appeal.file_added", me.locale)
    elif done in ("escalate", "send_down", "assign"):
        flash = t("appeal.done", me.locale, action=t(f"appeal.{done}", me.locale))
    return _appeal_page(request, me, number, flash=flash, done=done)


@router.post("/appeals/{number}/actions/{trigger}")
def fire_action(request: Request, number: str, trigger: str, me: Me, form: CheckedForm) -> Response:
    wf = workflow_of(request)
    user = me.actor.username
    listed = wf.actions(number, as_user=user, locale=me.locale)
    action = next((a for a in listed if a["kind"] == "transition" and a["trigger"] == trigger), None)
    data, typed = form_values(action["fields"] if action else [], form)
    comment, too_long = long_text_of(form, "comment")
    if too_long:
        return _too_long(request, me, number, trigger, "comment", comment, too_long, typed)
    expected = text_of(form, "expected_version", 12)
    try:
        wf.fire(
            number,
            trigger,
            as_user=user,
            comment=comment or None,
            data=data,
            expected_version=int(expected) if expected.isdigit() else None,
        )
    except (NotFound, OutsideJurisdiction):
        raise
    except WorkflowError as exc:
        failed = _failure(trigger, typed, comment, exc, me.locale)
        return _refused(request, me, number, failed, status_of(exc))
    return see_other(f"/appeals/{quote(number)}?{urlencode({'done': trigger})}")


@router.post("/appeals/{number}/comments")
def add_comment(request: Request, number: str, me: Me, form: CheckedForm) -> Response:
    text, too_long = long_text_of(form, "text")
    if too_long:
        return _too_long(request, me, number, "comment", "text", text, too_long)
    try:
        workflow_of(request).comment(number, text, as_user=me.actor.username)
    except (NotFound, OutsideJurisdiction):
        raise
    except WorkflowError as exc:
        failed = {"trigger": "comment", "values": {}, "comment": text, "problems": {}, "message": str(exc)}
        if not text.strip():
            failed["message"] = t("form.is_required", me.locale)
        return _refused(request, me, number, failed, status_of(exc))
    return see_other(f"/appeals/{quote(number)}?done=comment#comments")


def _too_long(
    request: Request,
    me: Viewer,
    number: str,
    form_name: str,
    field: str,
    text: str,
    message: str,
    typed: dict[str, Any] | None = None,
) -> Response:
    """The page again with the text as typed and the API's refusal beside it: nothing is stored."""
    words = field_message(message, me.locale)
    failed: dict[str, Any] = {
        "trigger": form_name,
        "values": typed or {},
        "comment": text,
        "problems": {field: words},
        "message": t("appeal.action_failed", me.locale) + words,
    }
    return _refused(request, me, number, failed, 422)


@router.post("/appeals/{number}/escalate")
def escalate(request: Request, number: str, me: Me, form: CheckedForm) -> Response:
    return _move(request, number, me, form, "escalate")


@router.post("/appeals/{number}/send-down")
def send_down(request: Request, number: str, me: Me, form: CheckedForm) -> Response:
    return _move(request, number, me, form, "send_down")


@router.post("/appeals/{number}/assign")
def assign(request: Request, number: str, me: Me, form: CheckedForm) -> Response:
    return _move(request, number, me, form, "assign")


def _move(request: Request, number: str, me: Viewer, form: FormData, kind: str) -> Response:
    """Escalate, send down or reassign: the chain moves that are no transition of the definition."""
    wf = workflow_of(request)
    user = me.actor.username
    reason, too_long = long_text_of(form, "reason")
    if too_long:
        return _too_long(request, me, number, kind, "reason", reason, too_long)
    expected_text = text_of(form, "expected_version", 12)
    expected = int(expected_text) if expected_text.isdigit() else None
    try:
        if kind == "escalate":
            wf.escalate(number, as_user=user, reason=reason, expected_version=expected)
        elif kind == "send_down":
            wf.send_down(number, as_user=user, instructions=reason, expected_version=expected)
        else:
            target = text_of(form, "username", 64)
            wf.assign(number, target, as_user=user, comment=reason or None, expected_version=expected)
    except (NotFound, OutsideJurisdiction) as exc:
        if kind == "assign" and isinstance(exc, NotFound) and not isinstance(exc, AppealNotFound):
            failed = _failure(kind, {}, reason, exc, me.locale)  # no such user: say so at the form
            return _refused(request, me, number, failed, 422)
        raise
    except WorkflowError as exc:
        failed = _failure(kind, {}, reason, exc, me.locale)
        if isinstance(exc, CommentRequired):
            failed["problems"] = {"reason": t("form.is_required", me.locale)}
        return _refused(request, me, number, failed, status_of(exc))
    return see_other(f"/appeals/{quote(number)}?done={kind}")
