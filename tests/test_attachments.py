"""Attachments on SQLite and PostgreSQL: types by content, the size limit, content stored once,
downloads only for those who see the appeal, removal kept in the audit, and the checklist per item."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import OUTDOOR_EVENT, table_counts
from workflow.clock import FrozenClock
from workflow.domain.file_types import FILE_TYPES, clean_name
from workflow.errors import FileRefused, FileTooLarge, InvalidInput, OutsideJurisdiction
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import Accounts
from workflow.services.attachments import Attachments, FileSettings
from workflow.services.audit import verify
from workflow.services.workflow import Workflow
from workflow.web.app import create_app
from workflow.web.settings import WebSettings

SECRET = "test-secret-key-that-is-long-enough-0123456789"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 100 + b"This program cannot be run"


def zipped(*names: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for name in names:
            package.writestr(name, "<x/>")
    return out.getvalue()


def blobs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def files(demo: Workflow, files_dir: Path) -> Attachments:
    return Attachments(demo, FileSettings(files_dir, max_bytes=4096))


@pytest.fixture
def number(demo: Workflow) -> str:
    appeal = demo.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)
    return str(appeal["number"])


def attach(files: Attachments, number: str, content: bytes, name: str, user: str = "contact-0001", **kw: Any) -> Any:
    return files.attach(number, name, iter([content]), as_user=user, **kw)


# --- types by content, names cleaned ------------------------------------------------------------------


SAMPLES = {  # built in the test: a ZIP carries the time it was made, and test ids must not
    "pdf": lambda: PDF,
    "jpeg": lambda: b"\xff\xd8\xff\xe0\x00\x10JFIF",
    "png": lambda: PNG,
    "ofd": lambda: zipped("OFD.xml", "Doc_0/Document.xml"),
    "docx": lambda: zipped("[Content_Types].xml", "word/document.xml"),
    "xlsx": lambda: zipped("[Content_Types].xml", "xl/workbook.xml"),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_allowed_type_is_known_by_its_content_whatever_its_name(
    files: Attachments, number: str, kind: str
) -> None:
    added = attach(files, number, SAMPLES[kind](), "scan.bin")
    assert added["content_type"] == FILE_TYPES[kind].media_type


def test_a_renamed_executable_is_refused_naming_the_allowed_types_and_nothing_is_left(
    files: Attachments, number: str, files_dir: Path
) -> None:
    before = table_counts(files.wf.engine)
    with pytest.raises(FileRefused) as refused:
        attach(files, number, EXE, "营业执照.pdf")
    assert "not one of the allowed types: PDF, JPEG, PNG, OFD, DOCX, XLSX" in str(refused.value)
    with pytest.raises(FileRefused, match="allowed types"):  # a ZIP that is no OFD or Office file
        attach(files, number, zipped("evil.exe"), "plan.docx")
    assert table_counts(files.wf.engine) == before
    assert blobs(files_dir) == [], "a refused file leaves nothing on disk"


def test_a_file_over_the_size_limit_is_refused_naming_the_limit(
    files: Attachments, number: str, files_dir: Path
) -> None:
    before = table_counts(files.wf.engine)
    chunks = iter([PDF, b"x" * 4096])
    with pytest.raises(FileTooLarge, match="at most 4096 bytes"):
        files.attach(number, "big.pdf", chunks, as_user="contact-0001")
    assert table_counts(files.wf.engine) == before
    assert blobs(files_dir) == []
    assert attach(files, number, PDF + b"x" * (4096 - len(PDF)), "exactly.pdf")["size"] == 4096


def test_names_lose_folders_control_and_reserved_characters_and_keep_chinese() -> None:
    pdf = FILE_TYPES["pdf"]
    assert clean_name("C:\\Users\\张三\\营业执照.pdf", pdf) == "营业执照.pdf"
    assert clean_name("../../etc/passwd", pdf) == "passwd"
    assert clean_name('a\x00b\r\n<c>:"d".pdf', pdf) == "ab_c___d_.pdf"
    assert clean_name("...", pdf) == "file.pdf"
    long = clean_name("很" * 300 + ".pdf", pdf)
    assert len(long) == 120 and long.endswith(".pdf")


# --- stored once, outside the database -----------------------------------------------------------------


def test_the_same_content_is_stored_once_under_its_sha256(files: Attachments, number: str, files_dir: Path) -> None:
    first = attach(files, number, PDF, "a.pdf")
    second = attach(files, number, PDF, "b.pdf", user="staff-b01")
    assert first["sha256"] == second["sha256"] and first["id"] != second["id"]
    sha = first["sha256"]
    assert blobs(files_dir) == [files_dir / sha[:2] / sha[2:4] / sha]
    assert [f["name"] for f in files.files(number, as_user="staff-b01")] == ["a.pdf", "b.pdf"]
    assert [f["uploaded_by"] for f in files.files(number, as_user="contact-0001")] == ["contact-0001", "staff-b01"]


def test_an_upload_is_an_audit_event_that_moves_the_version_and_the_chain_stays_sound(
    files: Attachments, number: str
) -> None:
    wf = files.wf
    added = attach(files, number, PDF, "申请表.pdf", item="application_form")
    assert wf.show(number)["version"] == 2
    events = wf.history(number)
    assert events[-1]["kind"] == "file_added"
    assert events[-1]["payload"]["sha256"] == added["sha256"]
    assert events[-1]["payload"]["item"] == "application_form"
    files.remove(number, added["id"], as_user="contact-0001")
    assert wf.history(number)[-1]["kind"] == "file_removed"
    wf.fire(number, "start_pre_check", as_user="staff-b01")
    report = verify(wf)
    assert report.ok, report.problems


# --- who may ------------------------------------------------------------------------------------------


def test_someone_who_cannot_see_the_appeal_can_neither_upload_nor_list_nor_download(
    files: Attachments, number: str, files_dir: Path
) -> None:
    added = attach(files, number, PDF, "a.pdf")
    for user in ("contact-0031", "staff-b02"):
        with pytest.raises(OutsideJurisdiction):
            files.open(number, added["id"], as_user=user)
        with pytest.raises(OutsideJurisdiction):
            files.files(number, as_user=user)
        with pytest.raises(OutsideJurisdiction):
            attach(files, number, PNG, "b.png", user=user)
    assert len(blobs(files_dir)) == 1
    view, path = files.open(number, added["id"], as_user="specialist-b01")
    assert path.read_bytes() == PDF and view["name"] == "a.pdf"


def test_a_checklist_item_must_be_one_of_the_definitions(files: Attachments, number: str) -> None:
    with pytest.raises(InvalidInput, match="no checklist item 'passport'; its items: application_form, business"):
        attach(files, number, PDF, "a.pdf", item="passport")
    attach(files, number, PDF, "licence.pdf", item="business_licence")
    checklist = {c["item"]: [f["name"] for f in c["files"]] for c in files.checklist(number, as_user="staff-b01")}
    assert checklist["business_licence"] == ["licence.pdf"]
    assert checklist["site_plan"] == []


def test_a_removal_keeps_the_row_the_blob_and_the_audit(files: Attachments, number: str, files_dir: Path) -> None:
    added = attach(files, number, PDF, "a.pdf", user="staff-b01")
    with pytest.raises(Exception, match="may remove only files they uploaded"):
        files.remove(number, added["id"], as_user="contact-0001")
    gone = files.remove(number, added["id"], as_user="staff-b01")
    assert gone["removed_at"] is not None
    assert files.files(number, as_user="staff-b01") == []
    assert len(blobs(files_dir)) == 1, "the stored file stays for the audit"
    removal = files.wf.history(number)[-1]
    assert (removal["kind"], removal["payload"]["sha256"]) == ("file_removed", added["sha256"])
    assert table_counts(files.wf.engine)["attachments"] == 1


# --- over HTTP -------------------------------------------------------------------------------------------


class Http:
    def __init__(self, wf: Workflow, clock: FrozenClock, client: TestClient) -> None:
        self.wf, self.client, self.accounts = wf, client, Accounts(clock)

    def headers(self, username: str) -> dict[str, str]:
        with UnitOfWork(self.wf.engine) as uow:
            token, _ = self.accounts.issue(uow, username)
            uow.commit()
        return {"Authorization": f"Bearer {token}"}

    def upload(self, number: str, as_: str, content: bytes, name: str, **fields: str) -> httpx.Response:
        return self.client.post(
            f"/api/v1/appeals/{number}/attachments",
            headers=self.headers(as_),
            files={"file": (name, content, "application/octet-stream")},
            data=fields,
        )


@pytest.fixture
def http(demo: Workflow, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Http]:
    monkeypatch.setenv("APPEALS_MAX_UPLOAD_BYTES", "4096")
    app = create_app(demo, WebSettings(secret_key=SECRET))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Http(demo, clock, client)


def test_the_api_uploads_lists_and_downloads_as_an_attachment_of_the_right_type(http: Http, number: str) -> None:
    answer = http.upload(number, "contact-0001", PDF, "场地平面图.pdf", item="site_plan")
    assert answer.status_code == 201, answer.text
    added = answer.json()
    assert (added["name"], added["item"], added["size"]) == ("场地平面图.pdf", "site_plan", len(PDF))
    listed = http.client.get(f"/api/v1/appeals/{number}/attachments", headers=http.headers("staff-b01")).json()
    assert [f["id"] for f in listed["attachments"]] == [added["id"]]
    assert {c["item"]: len(c["files"]) for c in listed["checklist"]}["site_plan"] == 1
    got = http.client.get(added["url"], headers=http.headers("contact-0001"))
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "filename*=utf-8''%E5%9C%BA" in got.headers["content-disposition"]


def test_a_foreign_users_download_is_a_404_like_a_missing_appeal(http: Http, number: str) -> None:
    added = http.upload(number, "contact-0001", PDF, "a.pdf").json()
    for user in ("contact-0031", "staff-b02"):
        answer = http.client.get(added["url"], headers=http.headers(user))
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"] == "not_found" and PDF not in answer.content
    missing = http.client.get(f"/api/v1/appeals/{number}/attachments/999999", headers=http.headers("contact-0001"))
    assert missing.status_code == 404


def test_the_api_refuses_a_renamed_executable_and_a_too_large_file_with_the_error_shape(
    http: Http, number: str, files_dir: Path
) -> None:
    refused = http.upload(number, "contact-0001", EXE, "invoice.pdf")
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["error"] == "file_refused" and "PDF, JPEG, PNG, OFD, DOCX, XLSX" in body["message"]
    large = http.upload(number, "contact-0001", PDF + b"x" * 5000, "big.pdf")
    assert large.status_code == 413, large.text
    assert large.json()["error"] == "file_too_large" and "4096 bytes" in large.json()["message"]
    assert large.json()["details"]["limit"] == 4096
    assert blobs(files_dir) == []
    assert http.wf.show(number)["version"] == 1


# --- the command line -------------------------------------------------------------------------------------


def test_the_cli_attaches_and_lists_files_and_refuses_with_one_line(
    db_url: str, number: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], files_dir: Path
) -> None:
    import json

    from workflow.cli import main

    scan = tmp_path / "平面图.png"
    scan.write_bytes(PNG)
    capsys.readouterr()
    code = main(["--db", db_url, "case", "attach", number, str(scan), "--as", "staff-b01", "--item", "site_plan"])
    assert code == 0, capsys.readouterr().err
    assert "平面图.png" in capsys.readouterr().out
    assert main(["--db", db_url, "case", "files", number, "--as", "contact-0001", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(f["name"], f["item"], f["content_type"]) for f in listed["attachments"]] == [
        ("平面图.png", "site_plan", "image/png")
    ]
    fake = tmp_path / "setup.pdf"
    fake.write_bytes(EXE)
    assert main(["--db", db_url, "case", "attach", number, str(fake), "--as", "staff-b01"]) == 1
    err = capsys.readouterr().err
    assert "file 'setup.pdf' refused" in err and "PDF, JPEG" in err
    assert main(["--db", db_url, "case", "files", number, "--as", "contact-0031", "--json"]) == 1
    assert "outside the jurisdiction" in capsys.readouterr().err
    assert len(blobs(files_dir)) == 1


# --- a definition can require files for checklist items ----------------------------------------------------

LICENCE_LINE = "  - {name: business_licence, title: {zh-CN: 营业执照复印件, en: Copy of the business licence}}\n"


def with_required_licence(tmp_path: Path, flag: str = "true") -> Path:
    from workflow.definitions import shipped_definition_files

    shipped = next(p for p in shipped_definition_files() if p.stem == "outdoor_event_permit")
    source = shipped.read_text(encoding="utf-8")
    assert source.count(LICENCE_LINE) == 1, "the shipped file changed shape"
    target = tmp_path / "defs" / "outdoor_event_permit.yaml"
    target.parent.mkdir(parents=True)
    required = LICENCE_LINE.replace(
        "en: Copy of the business licence}}", f"en: Copy of the business licence}}, requires_file: {flag}}}"
    )
    target.write_text(source.replace(LICENCE_LINE, required), encoding="utf-8")
    return target


def test_requires_file_must_be_true_or_false_and_is_reported_with_file_and_line(tmp_path: Path) -> None:
    from workflow.definitions import load_definition_text
    from workflow.errors import DefinitionError

    path = with_required_licence(tmp_path, "maybe")
    with pytest.raises(DefinitionError) as error:
        load_definition_text(path.read_text(encoding="utf-8"), str(path))
    line = (
        path.read_text(encoding="utf-8")
        .splitlines()
        .index(
            LICENCE_LINE.rstrip("\n").replace(
                "en: Copy of the business licence}}", "en: Copy of the business licence}, requires_file: maybe}"
            )
        )
        + 1
    )
    assert f"{path}:{line}: requires_file must be true or false, got 'maybe'" in str(error.value)
    spec = load_definition_text(with_required_licence(tmp_path / "ok").read_text(encoding="utf-8"))
    assert [m.name for m in spec.materials if m.requires_file] == ["business_licence"]


def test_the_checklist_transition_waits_for_a_file_on_each_item_that_requires_one(
    demo: Workflow, clock: FrozenClock, tmp_path: Path, files_dir: Path
) -> None:
    from workflow.bootstrap import connect
    from workflow.errors import GuardRejected

    wf = connect(engine=demo.engine, clock=clock, definitions=[with_required_licence(tmp_path)])
    files = Attachments(wf, FileSettings(files_dir))
    number = wf.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)["number"]
    wf.fire(number, "start_pre_check", as_user="staff-b01")
    wf.fire(number, "pass_pre_check", as_user="staff-b01")
    files.attach(number, "plan.pdf", iter([PDF]), as_user="specialist-b01", item="site_plan")
    before = table_counts(wf.engine)
    with pytest.raises(GuardRejected, match=r"need a file attached: business_licence \(营业执照复印件\)"):
        wf.fire(number, "file_application", as_user="specialist-b01", data={"materials_complete": True})
    assert table_counts(wf.engine) == before
    files.attach(number, "licence.png", iter([PNG]), as_user="contact-0001", item="business_licence")
    moved = wf.fire(number, "file_application", as_user="specialist-b01", data={"materials_complete": True})
    assert moved.state == "bureau_review"
    assert verify(wf).ok


# --- the appeal page -------------------------------------------------------------------------------------


def test_the_appeal_page_uploads_per_checklist_item_lists_and_downloads(
    demo: Workflow, clock: FrozenClock, number: str
) -> None:
    import re

    from tests.test_pages import browser, csrf_in

    page = browser(demo, clock, "contact-0001")
    html = page.get(f"/appeals/{number}").text
    assert 'enctype="multipart/form-data"' in html and 'name="item"' in html
    sent = page.post(
        f"/appeals/{number}/attachments",
        data={"csrf": csrf_in(html), "item": "safety_plan"},
        files={"file": ("安全方案.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    html = page.get(sent.headers["location"]).text
    assert "附件已上传" in html
    link = re.search(r'<a href="(/appeals/[^"]+/files/\d+)" data-file="\d+">安全方案.pdf</a>', html)
    assert link, "the file is listed with a download link"
    got = page.get(link.group(1))
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"].startswith("attachment;")
    refused = page.post(
        f"/appeals/{number}/attachments",
        data={"csrf": csrf_in(html)},
        files={"file": ("setup.pdf", EXE, "application/pdf")},
        follow_redirects=False,
    )
    assert refused.status_code == 422 and "PDF, JPEG, PNG, OFD, DOCX, XLSX" in refused.text
    forged = page.post(f"/appeals/{number}/attachments", data={"csrf": "forged"}, files={"file": ("a.pdf", PDF)})
    assert forged.status_code == 403
    stranger = browser(demo, clock, "contact-0031")
    assert stranger.get(link.group(1)).status_code == 404
