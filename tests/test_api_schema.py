"""Schemathesis against /openapi.json on a demo district, on SQLite and PostgreSQL: no operation answers 500, and
every answer has a declared status, content type, headers (WWW-Authenticate on a 401) and body.

Examples are signed in as a few demo users with a fresh token each (DELETE /auth/token revokes the one it is
sent with), and now and then aim at a real appeal and a real trigger, so that the calls get past the 404s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.openapi import from_asgi
from sqlalchemy import Engine

from tests.conftest import OUTDOOR_EVENT, START
from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.persistence.database import create_database_engine
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import Accounts
from workflow.services.demo_data import load_demo
from workflow.services.workflow import Workflow
from workflow.web.app import create_app
from workflow.web.settings import WebSettings

SECRET = "test-secret-key-that-is-long-enough-0123456789"
USERS = ["contact-0001", "staff-b01", "specialist-b01", "community-c01", "bureau-approval-01", "district-01"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
TRIGGERS = ["start_pre_check", "request_materials", "pass_pre_check", "file_application", "withdraw", "approve"]


class Site:
    def __init__(self, engine: Engine) -> None:
        self.clock = FrozenClock(START)
        self.wf: Workflow = connect(engine=engine, clock=self.clock)
        self.accounts = Accounts(self.clock)
        with UnitOfWork(engine) as uow:
            load_demo(uow, self.clock)
            uow.commit()
        self.numbers = [
            self.wf.submit("outdoor_event_permit", enterprise_id=e, as_user=f"contact-{e:04d}", data=OUTDOOR_EVENT)[
                "number"
            ]
            for e in (1, 1, 31)
        ]
        self.app = create_app(self.wf, WebSettings(secret_key=SECRET))

    def token(self, username: str) -> str:
        with UnitOfWork(self.wf.engine) as uow:
            token, _ = self.accounts.issue(uow, username)
            uow.commit()
        return token


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    engine = create_database_engine(db_url)
    try:
        yield Site(engine)
    finally:
        engine.dispose()


@pytest.fixture
def api_schema(site: Site) -> schemathesis.BaseSchema:
    return from_asgi("/openapi.json", site.app)


# tests/test_api.py::test_a_notice_id_beyond_any_column_is_a_422_not_a_500; fuzz it again once fixed.
schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@schema.given(
    user=st.sampled_from(USERS),
    appeal=st.sampled_from([None, 0, 1, 2]),
    trigger=st.sampled_from([None, *TRIGGERS]),
)
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_500_and_every_answer_fits_the_schema(
    case: schemathesis.Case[Any], site: Site, user: str, appeal: int | None, trigger: str | None
) -> None:
    if case.path_parameters:
        if appeal is not None and "number" in case.path_parameters:
            case.path_parameters["number"] = site.numbers[appeal]
        if trigger is not None and "trigger" in case.path_parameters:
            case.path_parameters["trigger"] = trigger
    case.headers["Authorization"] = f"Bearer {site.token(user)}"  # replaces a generated one: case-insensitive
    case.call_and_validate(checks=CHECKS)
