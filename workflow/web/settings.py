"""Web settings from the environment; a default secret is refused outside the demo."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import timedelta

from workflow.errors import InvalidInput

SECRET_VARIABLE = "APPEALS_SECRET_KEY"
PROXIES_VARIABLE = "APPEALS_TRUSTED_PROXIES"
MAX_BODY_VARIABLE = "APPEALS_MAX_BODY_BYTES"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # JSON and forms; file uploads will get their own limit
DEMO_SECRET = "demo-secret-not-for-production"


@dataclass(frozen=True)
class WebSettings:
    secret_key: str
    demo: bool = False
    token_ttl: timedelta = timedelta(hours=8)
    secure_cookies: bool = False  # set when served over HTTPS (or behind a proxy that terminates it)
    # Addresses or networks whose X-Forwarded-For / X-Forwarded-Proto are believed; anyone else's are ignored.
    trusted_proxies: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_environment(cls, *, demo: bool = False) -> WebSettings:
        secret = os.environ.get(SECRET_VARIABLE, "")
        if not secret:
            if not demo:
                raise InvalidInput(
                    f"set {SECRET_VARIABLE} to a long random string (e.g. `python -c 'import secrets; "
                    f"print(secrets.token_urlsafe(48))'`); only `appeals serve --demo` runs without one"
                )
            secret = DEMO_SECRET
        elif len(secret) < 32 or (secret == DEMO_SECRET and not demo):
            raise InvalidInput(f"{SECRET_VARIABLE} must be at least 32 characters and not the demo secret")
        hours = float(os.environ.get("APPEALS_TOKEN_TTL_HOURS", "8"))
        secure = os.environ.get("APPEALS_SECURE_COOKIES", "") == "1"
        return cls(
            secret_key=secret,
            demo=demo,
            token_ttl=timedelta(hours=hours),
            secure_cookies=secure,
            trusted_proxies=trusted_proxies(os.environ.get(PROXIES_VARIABLE, "")),
            max_body_bytes=_max_body_bytes(),
        )


def trusted_proxies(text: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses and networks (CIDR); every entry that is neither is named."""
    entries = tuple(entry.strip() for entry in text.split(",") if entry.strip())
    bad = []
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            bad.append(entry)
    if bad:
        raise InvalidInput(
            f"{PROXIES_VARIABLE}: {', '.join(repr(b) for b in bad)} are not IP addresses or networks; "
            "give a comma-separated list such as 10.0.0.5,10.1.0.0/16"
        )
    return entries


def _max_body_bytes() -> int:
    text = os.environ.get(MAX_BODY_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_BODY_BYTES
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(
            f"{MAX_BODY_VARIABLE} must be a whole number of bytes above 0 "
            f"(default {DEFAULT_MAX_BODY_BYTES}, 1 MiB); got {text!r}"
        )
    return int(text)
