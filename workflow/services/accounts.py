"""Accounts: scrypt password hashes, bearer tokens and sessions, and sign-in throttling kept in the
database so that it holds across nodes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update

from workflow.clock import Clock
from workflow.domain.appeal import Actor
from workflow.domain.org import Role
from workflow.errors import InvalidInput, NotPermitted, UnitNotFound, UserNotFound, WorkflowError
from workflow.persistence.tables import AuthToken, LoginAttempt, User, table_of
from workflow.persistence.unit_of_work import UnitOfWork

tokens = table_of(AuthToken)
attempts = table_of(LoginAttempt)
users = table_of(User)

# scrypt at N=2^14, r=8: ~16 MiB and ~50 ms per check here; the stdlib needs no extra dependency.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD, MAX_PASSWORD = 8, 256
ACCOUNT_LIMIT, ADDRESS_LIMIT = 5, 30  # failures per window before sign-in is refused
WINDOW = timedelta(minutes=15)


class TooManyAttempts(WorkflowError):
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed sign-ins; try again in {retry_after} seconds")

    def details(self) -> object:
        return {"retry_after": self.retry_after}


class NotSignedIn(NotPermitted):
    code = "not_signed_in"

    def __init__(self, reason: str = "sign in first") -> None:
        super().__init__(reason)


class SignInFailed(NotSignedIn):
    code = "sign_in_failed"

    def __init__(self) -> None:
        super().__init__("wrong username or password")


def hash_password(password: str) -> str:
    check_password_rules(password)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 2**20)
    encode = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


# Checked in place of a missing hash, so an unknown or disabled user costs the same scrypt as a real one.
_ZERO_SALT, _ZERO_DIGEST = base64.b64encode(bytes(16)).decode(), base64.b64encode(bytes(64)).decode()
_NO_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_ZERO_SALT}${_ZERO_DIGEST}"


def verify_password(password: str, stored: str | None) -> bool:
    known = stored is not None and stored.startswith("scrypt$")
    _, n, r, p, salt, digest = (stored if stored is not None and known else _NO_HASH).split("$")
    candidate = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), maxmem=64 * 2**20
    )
    return hmac.compare_digest(candidate, base64.b64decode(digest)) and known


def check_password_rules(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters (any script); this one has {len(password)}"
        )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf: str | None
    expires_at: datetime
    token_id: int


class Accounts:
    def __init__(self, clock: Clock, ttl: timedelta = timedelta(hours=8)) -> None:
        self.clock = clock
        self.ttl = ttl

    # --- sign in ---------------------------------------------------------------------
    def sign_in(
        self, uow: UnitOfWork, username: str, password: str, address: str, kind: str = "api"
    ) -> tuple[str, Session]:
        """Check the password under the per-account and per-address limits; return a new token."""
        now = self.clock.now()
        keys = [(f"user:{username.lower()}", ACCOUNT_LIMIT), (f"addr:{address}", ADDRESS_LIMIT)]
        for key, _ in keys:
            row = uow.connection.execute(select(attempts).where(attempts.c.key == key)).first()
            if row is not None and row.locked_until is not None and row.locked_until > now:
                raise TooManyAttempts(int((row.locked_until - now).total_seconds()) + 1)
        stored = uow.connection.execute(
            select(users.c.password_hash).where(users.c.username == username, users.c.active == True)  # noqa: E712
        ).scalar()
        if not verify_password(password, stored):
            for key, limit in keys:
                self._count_failure(uow, key, limit, now)
            uow.commit()  # the failure must count even though the request fails
            raise SignInFailed()
        uow.connection.execute(delete(attempts).where(attempts.c.key == keys[0][0]))
        return self.issue(uow, username, kind)

    def _count_failure(self, uow: UnitOfWork, key: str, limit: int, now: datetime) -> None:
        row = uow.connection.execute(select(attempts).where(attempts.c.key == key)).first()
        if row is None or row.window_start + WINDOW < now:
            uow.connection.execute(delete(attempts).where(attempts.c.key == key))
            uow.connection.execute(insert(attempts).values(key=key, failures=1, window_start=now, locked_until=None))
            return
        failures = row.failures + 1
        locked = now + WINDOW if failures >= limit else None
        uow.connection.execute(
            update(attempts).where(attempts.c.key == key).values(failures=failures, locked_until=locked)
        )

    def issue(self, uow: UnitOfWork, username: str, kind: str = "api") -> tuple[str, Session]:
        actor = uow.repo.actor(username)
        if actor is None:
            raise UserNotFound(username)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24) if kind == "session" else None
        now = self.clock.now()
        token_id = uow.connection.execute(
            insert(tokens).returning(tokens.c.id),
            {
                "token_hash": _token_hash(token),
                "user_id": actor.id,
                "kind": kind,
                "csrf": csrf,
                "created_at": now,
                "expires_at": now + self.ttl,
                "revoked_at": None,
            },
        ).scalar_one()
        return token, Session(actor, csrf, now + self.ttl, int(token_id))

    def authenticate(self, uow: UnitOfWork, token: str | None) -> Session:
        if not token:
            raise NotSignedIn()
        row = uow.connection.execute(select(tokens).where(tokens.c.token_hash == _token_hash(token))).first()
        now = self.clock.now()
        if row is None or row.revoked_at is not None:
            raise NotSignedIn("the token is not valid; sign in again")
        if row.expires_at <= now:
            raise NotSignedIn("the token has expired; sign in again")
        actor = uow.repo.actor_by_id(row.user_id)
        active = uow.connection.execute(select(users.c.active).where(users.c.id == row.user_id)).scalar()
        if actor is None or not active:
            raise NotSignedIn("the account is disabled")
        return Session(actor, row.csrf, row.expires_at, row.id)

    def revoke(self, uow: UnitOfWork, token: str) -> bool:
        result = uow.connection.execute(
            update(tokens)
            .where(tokens.c.token_hash == _token_hash(token), tokens.c.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
        )
        return result.rowcount == 1

    # --- accounts ----------------------------------------------------------------------
    def add_user(
        self,
        uow: UnitOfWork,
        *,
        username: str,
        display_name: str,
        role: str,
        unit_code: str,
        password: str,
        email: str | None = None,
        locale: str = "zh-CN",
        enterprise_id: int | None = None,
    ) -> int:
        if role not in {r.value for r in Role} - {Role.SYSTEM.value}:
            allowed = ", ".join(sorted(r.value for r in Role if r is not Role.SYSTEM))
            raise InvalidInput(f"unknown role {role!r}; allowed: {allowed}")
        if locale not in ("zh-CN", "en"):
            raise InvalidInput(f"unknown locale {locale!r}; allowed: zh-CN, en")
        if role == Role.ENTERPRISE_CONTACT and enterprise_id is None:
            raise InvalidInput("an enterprise_contact needs --enterprise ID")
        unit = uow.repo.unit_by_code(unit_code)
        if unit is None:
            raise UnitNotFound(unit_code)
        taken = uow.connection.execute(select(users.c.id).where(users.c.username == username)).first()
        if taken is not None:
            raise InvalidInput(f"username {username!r} is taken")
        return int(
            uow.connection.execute(
                insert(users).returning(users.c.id),
                {
                    "username": username,
                    "display_name": display_name,
                    "role": role,
                    "unit_id": unit.id,
                    "enterprise_id": enterprise_id,
                    "email": email,
                    "phone": None,
                    "locale": locale,
                    "password_hash": hash_password(password),
                    "active": True,
                    "created_at": self.clock.now(),
                },
            ).scalar_one()
        )

    def set_password(self, uow: UnitOfWork, username: str, password: str) -> None:
        result = uow.connection.execute(
            update(users).where(users.c.username == username).values(password_hash=hash_password(password))
        )
        if result.rowcount != 1:
            raise UserNotFound(username)

    def disable(self, uow: UnitOfWork, username: str) -> None:
        """Disabled accounts cannot sign in, and their tokens stop working at once."""
        result = uow.connection.execute(update(users).where(users.c.username == username).values(active=False))
        if result.rowcount != 1:
            raise UserNotFound(username)
        user_id = uow.connection.execute(select(users.c.id).where(users.c.username == username)).scalar_one()
        uow.connection.execute(
            update(tokens)
            .where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
        )
