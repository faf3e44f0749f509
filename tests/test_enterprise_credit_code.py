"""Each enterprise carries its unified social credit code (统一社会信用代码): valid in the demo district, shown by
`appeals org show` (tested in test_cli.py), in the API's appeal and on the appeal page."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import OUTDOOR_EVENT
from tests.test_api import SECRET, TTL
from tests.test_pages import browser
from workflow.clock import FrozenClock
from workflow.domain.credit_code import credit_code_problem
from workflow.persistence.tables import Enterprise
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import Accounts
from workflow.services.workflow import Workflow
from workflow.web.app import create_app
from workflow.web.settings import WebSettings


def credit_codes(wf: Workflow) -> dict[int, str]:
    with UnitOfWork(wf.engine, read_only=True) as uow:
        rows = uow.connection.execute(select(Enterprise.id, Enterprise.credit_code)).all()
    return {row.id: row.credit_code for row in rows}


def test_every_demo_enterprise_has_a_valid_code_of_its_own(demo: Workflow) -> None:
    codes = credit_codes(demo)
    assert len(codes) == 300 and len(set(codes.values())) == 300
    wrong = {i: (code, credit_code_problem(code)) for i, code in codes.items() if credit_code_problem(code)}
    assert wrong == {}
    assert all(code.startswith("91430102") for code in codes.values()), "companies registered in Furong district"


def test_the_api_and_the_appeal_page_show_the_enterprise_code(demo: Workflow, clock: FrozenClock) -> None:
    code = credit_codes(demo)[1]
    number = demo.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)["number"]
    with UnitOfWork(demo.engine) as uow:
        token, _ = Accounts(clock).issue(uow, "staff-b01")
        uow.commit()
    with TestClient(create_app(demo, WebSettings(secret_key=SECRET, token_ttl=TTL))) as api:
        answer = api.get(f"/api/v1/appeals/{number}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    name = demo.show(number)["enterprise"]["name"]
    assert answer.json()["enterprise"] == {"id": 1, "name": name, "credit_code": code}
    page = browser(demo, clock, "staff-b01").get(f"/appeals/{number}")
    assert f"统一社会信用代码 {code}" in page.text
