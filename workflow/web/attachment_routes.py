"""Attachments over HTTP: the API under /api/v1 (bearer token) and the appeal page's upload and
download (session cookie, CSRF). Downloads go only to people who can see the appeal (404 otherwise,
like every appeal route), as `Content-Disposition: attachment` with the type judged at upload."""

from __future__ import annotations

import hmac
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from workflow.errors import NotFound, OutsideJurisdiction, WorkflowError
from workflow.services.attachments import Attachments
from workflow.web.api import ERRORS, Caller
from workflow.web.appeal_page import _appeal_page
from workflow.web.errors import status_of
from workflow.web.multipart_upload import read_upload
from workflow.web.page_support import CsrfRefused, Me, see_other

api_router = APIRouter(prefix="/api/v1", tags=["attachments"])
page_router = APIRouter(include_in_schema=False)
AttachmentId = Annotated[int, Path(ge=1, le=2**63 - 1)]
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "item": {"type": "string", "description": "the materials checklist item it satisfies"},
                    },
                }
            }
        },
    }
}


def attachments_of(request: Request) -> Attachments:
    """One per application, made on first use (the settings are read from the environment then)."""
    found: Attachments | None = getattr(request.app.state, "attachments", None)
    if found is None:
        found = Attachments(request.app.state.wf)
        request.app.state.attachments = found
    return found


Files = Annotated[Attachments, Depends(attachments_of)]


def _download(view: dict[str, Any], path: Any) -> FileResponse:
    response = FileResponse(
        path, media_type=view["content_type"], filename=view["name"], content_disposition_type="attachment"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


async def _receive(request: Request, files: Attachments, number: str, username: str) -> dict[str, Any]:
    await run_in_threadpool(files.precheck, number, as_user=username)
    parsed = await read_upload(request, files.upload)
    assert parsed.received is not None
    return await run_in_threadpool(
        files.attach_received,
        number,
        parsed.filename,
        parsed.received,
        as_user=username,
        item=parsed.fields.get("item"),
    )


@api_router.post(
    "/appeals/{number}/attachments", status_code=201, responses={**ERRORS, 413: ERRORS[422]}, openapi_extra=UPLOAD_BODY
)
async def upload(number: str, request: Request, files: Files, me: Caller) -> dict[str, Any]:
    """Add a file (multipart: `file`, optional `item`); its type is judged by its content."""
    return await _receive(request, files, number, me.actor.username)


@api_router.get("/appeals/{number}/attachments", responses=ERRORS)
def list_files(number: str, files: Files, me: Caller) -> dict[str, Any]:
    """The appeal's files, and its materials checklist with the files of each item."""
    username = me.actor.username
    return {
        "attachments": files.files(number, as_user=username),
        "checklist": files.checklist(number, as_user=username),
    }


@api_router.get("/appeals/{number}/attachments/{attachment_id}", responses=ERRORS, response_class=FileResponse)
def download(number: str, attachment_id: AttachmentId, files: Files, me: Caller) -> FileResponse:
    view, path = files.open(number, attachment_id, as_user=me.actor.username)
    return _download(view, path)


@api_router.delete("/appeals/{number}/attachments/{attachment_id}", responses=ERRORS)
def remove(number: str, attachment_id: AttachmentId, files: Files, me: Caller) -> dict[str, Any]:
    """Take a file off the appeal; the audit keeps the record and the stored file."""
    return files.remove(number, attachment_id, as_user=me.actor.username)


@page_router.post("/appeals/{number}/attachments")
async def upload_page(number: str, request: Request, files: Files, me: Me) -> Response:
    parsed = None
    try:
        await run_in_threadpool(files.precheck, number, as_user=me.actor.username)
        parsed = await read_upload(request, files.upload)
        sent = parsed.fields.get("csrf", "")
        if not me.csrf or not hmac.compare_digest(sent.encode(), me.csrf.encode()):
            raise CsrfRefused()
        received, parsed.received = parsed.received, None
        assert received is not None
        await run_in_threadpool(
            files.attach_received,
            number,
            parsed.filename,
            received,
            as_user=me.actor.username,
            item=parsed.fields.get("item"),
        )
    except (NotFound, OutsideJurisdiction, CsrfRefused):
        raise
    except WorkflowError as exc:
        failed = {"trigger": "file", "values": {}, "comment": "", "problems": {}, "message": str(exc)}
        return _appeal_page(request, me, number, failed=failed, status=status_of(exc))
    finally:
        if parsed is not None and parsed.received is not None:
            files.store.discard(parsed.received)
    return see_other(f"/appeals/{quote(number)}?done=file#files")


@page_router.get("/appeals/{number}/files/{attachment_id}")
def download_page(number: str, attachment_id: AttachmentId, files: Files, me: Me) -> FileResponse:
    view, path = files.open(number, attachment_id, as_user=me.actor.username)
    return _download(view, path)
