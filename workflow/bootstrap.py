"""The one place where concrete parts are wired together: database, clock, definitions."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from workflow.clock import Clock, SystemClock
from workflow.definitions import shipped_definition_files
from workflow.domain.sla import SlaPlanner
from workflow.errors import WorkflowError
from workflow.persistence import app_role, migrate
from workflow.persistence.app_role import RoleReport
from workflow.persistence.database import DEFAULT_URL, create_database_engine
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.calendars import build_calendar
from workflow.services.registry import DefinitionRegistry
from workflow.services.workflow import Workflow

DATABASE_URL_VARIABLE = "APPEALS_DATABASE_URL"
DEFINITIONS_VARIABLE = "APPEALS_DEFINITIONS"


class SchemaNotReady(WorkflowError):
    pass


def database_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get(DATABASE_URL_VARIABLE) or DEFAULT_URL


def definition_paths(extra: Sequence[str | Path] = ()) -> list[Path]:
    """The shipped definitions, plus files or folders named in APPEALS_DEFINITIONS (os.pathsep-separated)."""
    paths = shipped_definition_files()
    configured = [p for p in os.environ.get(DEFINITIONS_VARIABLE, "").split(os.pathsep) if p]
    for item in [*configured, *extra]:
        path = Path(item)
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        by_name = {p.stem: p for p in paths}
        by_name.update({f.stem: f for f in files})  # a local file replaces the shipped one of its name
        paths = sorted(by_name.values())
    return paths


def open_engine(url: str | None = None) -> Engine:
    """The database alone, for work that needs no definitions (a backup)."""
    return create_database_engine(database_url(url))


def init_database(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    migrate.upgrade(engine)


def grant_app_role(engine: Engine, name: str) -> RoleReport:
    """`appeals init --app-role NAME` (PostgreSQL): the role the application runs as, owning nothing."""
    with engine.begin() as connection:
        return app_role.grant_app_role(connection, name)


def connect(
    url: str | None = None,
    *,
    clock: Clock | None = None,
    definitions: Sequence[str | Path] = (),
    engine: Engine | None = None,
    upgrade: bool = False,
) -> Workflow:
    """Open the engine on a database; `upgrade=True` also creates or upgrades its schema first."""
    engine = engine or create_database_engine(database_url(url))
    if upgrade:
        init_database(engine)
    elif migrate.current_revision(engine) != migrate.head_revision():
        raise SchemaNotReady(
            f"the database at {engine.url.render_as_string(hide_password=True)} has no current schema; "
            "run `appeals init` first"
        )
    clock = clock or SystemClock()
    registry = DefinitionRegistry(definition_paths(definitions))
    with UnitOfWork(engine) as uow:
        registry.sync(uow, clock)
        calendar = build_calendar(uow)
        uow.commit()
    return Workflow(engine, registry, clock, SlaPlanner(calendar))
