"""The PostgreSQL role the application runs as: owns nothing, may append to the audit trail but never change it.

The admin role that runs `appeals init` owns the schema (and so could still disable triggers); the
application connects as this role, which may read and write the working tables, only SELECT and INSERT
on the trail and the seals, use the id sequences, and run no DDL. Run it again after every upgrade:
tables a migration adds get their grants then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from workflow.errors import InvalidInput
from workflow.persistence.tables import Base

APPEND_ONLY = ("appeal_events", "audit_seals")
READ_ONLY = ("alembic_version",)  # `connect` checks the schema revision
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class RoleReport:
    name: str
    created: bool
    schema: str
    read_write: list[str] = field(default_factory=list)
    append_only: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _quoted(name: str) -> str:
    return '"' + name + '"'


def grant_app_role(connection: Connection, name: str) -> RoleReport:
    """Create the role if it is missing (LOGIN, no password) and set its grants from scratch."""
    if connection.dialect.name != "postgresql":
        raise InvalidInput(
            "--app-role is for PostgreSQL only: SQLite has no roles (protect the database file's permissions instead)"
        )
    if not _NAME.match(name):
        raise InvalidInput(
            f"role name {name!r} is not allowed: use 1-63 lowercase letters, digits and underscores, not starting "
            "with a digit"
        )
    current_user = connection.execute(text("SELECT current_user")).scalar_one()
    if name == current_user:
        raise InvalidInput(f"role {name!r} is the role running init (it owns the schema); name a different role")
    found = connection.execute(
        text("SELECT rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = :n"),
        {"n": name},
    ).first()
    if found is not None and found[0]:
        raise InvalidInput(
            f"role {name!r} is a superuser or may create roles, databases or bypass row security; "
            "the application role must hold no such power"
        )
    owned = connection.execute(
        text("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = :n"),
        {"n": name},
    ).scalar_one()
    if owned:
        raise InvalidInput(f"role {name!r} owns {owned} tables or other relations; the application role must own none")
    role, schema = _quoted(name), connection.execute(text("SELECT current_schema()")).scalar_one()
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    if found is None:
        # LOGIN without a password: it signs in however pg_hba.conf lets it (a password set by the DBA with
        # ALTER ROLE ... PASSWORD, a certificate, peer); NOLOGIN would only serve through SET ROLE.
        connection.execute(text(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"))
    report = RoleReport(name, found is None, schema)
    connection.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {role}'))
    connection.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
    connection.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {role}'))
    for table in sorted(t.name for t in Base.metadata.sorted_tables):
        if table in APPEND_ONLY:
            connection.execute(text(f'GRANT SELECT, INSERT ON "{schema}"."{table}" TO {role}'))
            report.append_only.append(table)
        else:
            connection.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{schema}"."{table}" TO {role}'))
            report.read_write.append(table)
    for table in READ_ONLY:
        connection.execute(text(f'GRANT SELECT ON "{schema}"."{table}" TO {role}'))
    connection.execute(text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}'))
    may_create = connection.execute(
        text("SELECT has_schema_privilege(:n, :s, 'CREATE')"), {"n": name, "s": schema}
    ).scalar_one()
    if may_create:
        report.warnings.append(
            f"{name} may still create tables in schema {schema} through PUBLIC (PostgreSQL before 15): "
            f'REVOKE CREATE ON SCHEMA "{schema}" FROM PUBLIC'
        )
    return report
