"""Accounts: scrypt password hashes, API tokens and browser sessions (each accepted only where it belongs), and
signing in under the throttling of sign_in_limits, recorded in sign_in_history."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from workflow.clock import Clock
from workflow.domain.appeal import Actor
from workflow.domain.org import Role
from workflow.errors import InvalidInput, NotPermitted, UnitNotFound, UserNotFound
from workflow.persistence.tables import AuthToken, User, table_of
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services import sign_in_history, sign_in_limits
from workflow.services.password_policy import check_password
from workflow.services.sign_in_limits import TooManyAttempts

__all__ = ["Accounts", "NotSignedIn", "Session", "SignInFailed", "TooManyAttempts", "hash_password"]

tokens = table_of(AuthToken)
users = table_of(User)
TOKEN_KINDS = ("api", "session")  # an API bearer token; a browser session (its cookie, with a CSRF value)

# scrypt at N=2^14, r=8: ~16 MiB and ~50 ms per check here; the stdlib needs no extra dependency.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class NotSignedIn(NotPermitted):
    code = "not_signed_in"

    def __init__(self, reason: str = "sign in first") -> None:
        super().__init__(reason)


class SignInFailed(NotSignedIn):
    code = "sign_in_failed"

    def __init__(self) -> None:
        super().__init__("wrong username or password")


def hash_password(password: str, username: str | None = None) -> str:
    """The stored form of a password that passes the rules of password_policy (WeakPassword if not)."""
    check_password(password, username)
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
        """Check the password unless this address is being held back (TooManyAttempts); return a new token.

        A failure is counted, recorded for the account's owner and committed before SignInFailed is raised."""
        now = self.clock.now()
        limits = sign_in_limits.limits_for(username, address)
        sign_in_limits.check(uow, limits, now)
        account = uow.connection.execute(
            select(users.c.id, users.c.password_hash).where(
                users.c.username == username,
                users.c.active == True,  # noqa: E712
            )
        ).first()
        if not verify_password(password, account.password_hash if account else None):
            sign_in_limits.count_failure(uow, limits, now)
            if account is not None:
                sign_in_history.record(uow, account.id, address, now, succeeded=False)
            uow.commit()  # the failure must count even though the request fails
            raise SignInFailed()
        assert account is not None  # verify_password is false without a stored hash
        sign_in_limits.forget(uow, limits[0])
        sign_in_history.record(uow, account.id, address, now, succeeded=True)
        return self.issue(uow, username, kind)

    def issue(self, uow: UnitOfWork, username: str, kind: str = "api") -> tuple[str, Session]:
        if kind not in TOKEN_KINDS:
            raise InvalidInput(f"unknown token kind {kind!r}; allowed: {', '.join(TOKEN_KINDS)}")
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

    def authenticate(self, uow: UnitOfWork, token: str | None, *, kind: str) -> Session:
        """The session behind a token of this kind: an API door takes no session cookie, a page no API token."""
        if not token:
            raise NotSignedIn()
        row = uow.connection.execute(select(tokens).where(tokens.c.token_hash == _token_hash(token))).first()
        now = self.clock.now()
        if row is None or row.revoked_at is not None or row.kind != kind:
            raise NotSignedIn("the token is not valid; sign in again")
        if row.expires_at <= now:
            raise NotSignedIn("the token has expired; sign in again")
        actor = uow.repo.actor_by_id(row.user_id)
        active = uow.connection.execute(select(users.c.active).where(users.c.id == row.user_id)).scalar()
        if actor is None or not active:
            raise NotSignedIn("the account is disabled")
        return Session(actor, row.csrf, row.expires_at, row.id)

    def sign_in_history(self, uow: UnitOfWork, session: Session) -> dict[str, object]:
        """What the owner is told: failed attempts since the sign-in before the latest, with their addresses."""
        return sign_in_history.failures_since_previous(uow, session.actor.id)

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
                    "password_hash": hash_password(password, username),
                    "active": True,
                    "created_at": self.clock.now(),
                },
            ).scalar_one()
        )

    def set_password(self, uow: UnitOfWork, username: str, password: str) -> None:
        """A new password ends every token and session of the account: whoever knew the old one is out."""
        result = uow.connection.execute(
            update(users).where(users.c.username == username).values(password_hash=hash_password(password, username))
        )
        if result.rowcount != 1:
            raise UserNotFound(username)
        self._revoke_all(uow, username)

    def disable(self, uow: UnitOfWork, username: str) -> None:
        """Disabled accounts cannot sign in, and their tokens stop working at once."""
        result = uow.connection.execute(update(users).where(users.c.username == username).values(active=False))
        if result.rowcount != 1:
            raise UserNotFound(username)
        self._revoke_all(uow, username)

    def _revoke_all(self, uow: UnitOfWork, username: str) -> None:
        user_id = uow.connection.execute(select(users.c.id).where(users.c.username == username)).scalar_one()
        uow.connection.execute(
            update(tokens)
            .where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
        )
