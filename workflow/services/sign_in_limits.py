"""Sign-in throttling: growing delays per (account, address) and per address, counted in the database so that
every node sees the same counts.

Nothing is kept per account alone: anyone may type anyone's username, and a lock on the account would let them
lock its owner out. So failures hold back only the address they come from: after a few free tries each further
attempt from there waits a delay that doubles (1 s, 2 s, 4 s … at most 15 minutes), for that account and, past
a larger count, for every account. A correct password from an address that has not been failing gets in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from workflow.errors import WorkflowError
from workflow.persistence.tables import LoginAttempt, table_of
from workflow.persistence.unit_of_work import UnitOfWork

attempts = table_of(LoginAttempt)

FIRST_DELAY, LONGEST_DELAY = timedelta(seconds=1), timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=1)  # quiet this long after the last failure, a key's count starts again


class TooManyAttempts(WorkflowError):
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        unit = "second" if retry_after == 1 else "seconds"
        super().__init__(f"too many failed sign-ins; try again in {retry_after} {unit}")

    def details(self) -> object:
        return {"retry_after": self.retry_after}


@dataclass(frozen=True)
class Limit:
    key: str
    free: int  # failures before the delays begin

    def delay_after(self, failures: int) -> timedelta | None:
        if failures < self.free:
            return None
        doublings = min(failures - self.free, 20)  # 2**20 s is far past the cap; keeps the number small
        delay: timedelta = FIRST_DELAY * (2**doublings)
        return min(delay, LONGEST_DELAY)


def limits_for(username: str, address: str) -> tuple[Limit, Limit]:
    """The (account, address) pair, then the address across all accounts (an office behind one NAT shares it)."""
    return Limit(f"pair:{username.casefold()}|{address}", 3), Limit(f"addr:{address}", 20)


def check(uow: UnitOfWork, limits: tuple[Limit, ...], now: datetime) -> None:
    """Refuse with the longest wait still to run, before any password is checked."""
    rows = uow.connection.execute(
        select(attempts.c.locked_until).where(attempts.c.key.in_([limit.key for limit in limits]))
    ).all()
    waits = [row.locked_until - now for row in rows if row.locked_until is not None and row.locked_until > now]
    if waits:
        seconds = max(waits).total_seconds()
        raise TooManyAttempts(int(seconds) + (0 if seconds.is_integer() else 1))


def count_failure(uow: UnitOfWork, limits: tuple[Limit, ...], now: datetime) -> None:
    """Count one more failure on each key: an insert that skips an existing row, then an increment in the
    database, so that concurrent failures on several nodes are all counted (the one lock is the row's)."""
    # Keys that have been quiet long enough go, so rotating addresses leave no lasting rows behind.
    uow.connection.execute(delete(attempts).where(attempts.c.last_failed_at < now - FORGET_AFTER))
    builder = pg_insert if uow.connection.dialect.name == "postgresql" else sqlite_insert
    for limit in limits:
        uow.connection.execute(
            builder(attempts)
            .values(key=limit.key, failures=0, last_failed_at=now, locked_until=None)
            .on_conflict_do_nothing()
        )
        failures = uow.connection.execute(
            update(attempts)
            .where(attempts.c.key == limit.key)
            .values(failures=attempts.c.failures + 1, last_failed_at=now)
            .returning(attempts.c.failures)
        ).scalar_one()
        delay = limit.delay_after(int(failures))
        if delay is not None:
            uow.connection.execute(update(attempts).where(attempts.c.key == limit.key).values(locked_until=now + delay))


def forget(uow: UnitOfWork, limit: Limit) -> None:
    """A correct password: this pair's failures were the owner's typos."""
    uow.connection.execute(delete(attempts).where(attempts.c.key == limit.key))
