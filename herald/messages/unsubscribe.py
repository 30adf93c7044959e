"""Signed unsubscribe tokens: compact, URL-safe, HMAC-SHA256 with a server secret.

Token = base64url(payload) "." base64url(mac[:16]), unpadded. The payload is a version tag and
the four fields joined by the ASCII unit separator. Both halves must be canonical base64url
(re-encoding the decoded bytes gives the same text), so no two strings read as one token and
every single-character change is rejected. Tokens do not expire: CAN-SPAM wants a working
unsubscribe for at least 30 days, and an old link that still works is harmless.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

VERSION = "u1"
_SEP = "\x1f"
_MAC_BYTES = 16  # 128-bit truncated HMAC-SHA256: ample against forgery, keeps links short
_DOMAIN = b"herald/unsubscribe-token\x00"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
MAX_TOKEN_CHARS = 1024


class InvalidToken(ValueError):
    """The token is malformed, forged or tampered with."""


@dataclass(frozen=True)
class TokenData:
    client_id: str
    contact_id: str
    channel: str
    scope: str


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("unsubscribe secret is empty")
    return key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("token is not base64url") from exc
    if _b64(raw) != text:  # unused trailing bits set, or other non-canonical text
        raise InvalidToken("token is not canonical base64url")
    return raw


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _DOMAIN + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(secret: str | bytes, client_id: str, contact_id: str, channel: str, scope: str) -> str:
    fields = (client_id, contact_id, channel, scope)
    for name, value in zip(("client_id", "contact_id", "channel", "scope"), fields, strict=True):
        if not value or _SEP in value:
            raise ValueError(f"{name} must be a non-empty string without U+001F, got {value!r}")
    payload = _SEP.join((VERSION, *fields)).encode("utf-8")
    return f"{_b64(payload)}.{_b64(_mac(_key(secret), payload))}"


def read_token(secret: str | bytes, token: str) -> TokenData:
    """Verify and decode a token; raise InvalidToken on anything but an untouched token."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.match(token):
        raise InvalidToken("token is malformed")
    payload_text, mac_text = token.split(".")
    payload, mac = _unb64(payload_text), _unb64(mac_text)
    if not hmac.compare_digest(mac, _mac(_key(secret), payload)):
        raise InvalidToken("token signature does not match")
    try:
        version, *fields = payload.decode("utf-8").split(_SEP)
    except UnicodeDecodeError as exc:  # only reachable with a valid MAC, i.e. a key mix-up
        raise InvalidToken("token payload is not UTF-8") from exc
    if version != VERSION or len(fields) != 4:
        raise InvalidToken(f"token version {version!r} is not supported")
    return TokenData(*fields)


def unsubscribe_urls(public_url: str, token: str) -> tuple[str, str]:
    """(page URL `<public>/u/<token>`, RFC 8058 one-click URL `<public>/u/<token>/one-click`)."""
    page_url = f"{public_url.rstrip('/')}/u/{token}"
    return page_url, f"{page_url}/one-click"
