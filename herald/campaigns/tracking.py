"""Click tracking: signed short links ``<public_url>/l/<token>``, email link rewriting, and the
landing of clicks.

A token carries what the redirect needs, so ``herald serve`` never reads the warehouse (an
embedded DuckDB may be locked by a run): the message key (16 bytes) and the destination URL
(its scheme as one byte), signed with ``itsdangerous`` (HMAC-SHA256 over a key derived from
``HERALD_SECRET_KEY``, cut to 96 bits). The client and the contact are looked up from the
message key when the click is loaded (``herald_ops.outbox``), which keeps SMS links short: the
token is 4/3 of the URL plus about 30 characters. A token whose URL, key or signature was changed fails verification: only
URLs that were in the rendered message redirect. Token = base64url(payload) "." base64url(mac),
both canonical.

Templates call ``{{ track(url) }}`` (SMS and email); in email HTML every ``<a href="http(s)://…">``
is rewritten as well, except Herald's own pages (unsubscribe, confirmation). A campaign with
``track_links: false`` keeps its URLs as written.

Clicks land like provider events: JSON-lines files under ``$HERALD_HOME/landing/clicks/``
(embedded DuckDB; the web service never writes it) or rows of ``herald_raw.link_clicks``
(PostgreSQL). :func:`load_clicks` (run by the provider-events asset) loads the files, fills in
each click's client and contact from the outbox, and stamps ``herald_ops.outbox.clicked_at``
with each message's first click by a person.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import re
import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from itsdangerous import BadSignature, Signer
from itsdangerous.signer import HMACAlgorithm

from herald.clock import utcnow
from herald.compliance.landing import write_atomically
from herald.warehouse.connection import Session, Warehouse
from herald.warehouse.schema import OPS_SCHEMA, RAW_SCHEMA, column_names

CLICKS_TABLE = f"{RAW_SCHEMA}.link_clicks"
OUTBOX_TABLE = f"{OPS_SCHEMA}.outbox"
LINK_PATH = "/l/"
TRACK_FUNCTION = "track"
SUFFIX = ".jsonl"
MAX_TOKEN_CHARS = 2048
MAX_URL_CHARS = 1024
MAX_USER_AGENT_CHARS = 256
# the first byte: the format and the URL's scheme, which the payload then leaves out
_SCHEMES = {1: "https://", 2: "http://"}
_MAC_BYTES = 12
_SALT = "herald.link"
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_HREF_RE = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'<>\s]*)\2""", re.IGNORECASE)

BOT, MOBILE, DESKTOP = "bot", "mobile", "desktop"
# link previews (chat apps, social networks), mail security scanners, crawlers and scripts
_BOT_RE = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|preview|facebookexternalhit|whatsapp|telegram|skypeuri|embedly|"
    r"proofpoint|mimecast|barracuda|safelinks|google-safety|headless|python-|httpx|curl/|wget/|"
    r"go-http-client|okhttp|java/|libwww|axios|node-fetch|scrapy|monitor|check",
    re.IGNORECASE,
)
_MOBILE_RE = re.compile(r"mobile|android|iphone|ipad|ipod|windows phone|blackberry|opera mini", re.IGNORECASE)


class InvalidLinkToken(ValueError):
    """The link token is malformed, forged or tampered with."""


@dataclass(frozen=True)
class LinkTarget:
    """What a link token says: which message's link, and where it goes."""

    message_key: str
    url: str


class _TruncatedHMAC(HMACAlgorithm):
    """HMAC-SHA256 cut to 96 bits: ample against forging a redirect online, 27 characters shorter."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return super().get_signature(key, value)[:_MAC_BYTES]


def _signer(secret: str | bytes) -> Signer:
    if not secret:
        raise ValueError("the link secret is empty")
    return Signer(
        secret,
        salt=_SALT,
        key_derivation="hmac",
        digest_method=hashlib.sha256,
        algorithm=_TruncatedHMAC(hashlib.sha256),
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidLinkToken("token is not base64url") from exc
    if _b64(raw) != text:  # set trailing bits: no two texts read as one token
        raise InvalidLinkToken("token is not canonical base64url")
    return raw


def check_url(url: object) -> str:
    """``url`` when it is an absolute http(s) URL fit for a redirect; ValueError otherwise."""
    if not isinstance(url, str):
        raise ValueError(f"track() needs a URL string, got {type(url).__name__}")
    if not re.match(r"^https?://[^/\s?#]+", url, re.IGNORECASE):
        raise ValueError(f"track() needs an absolute http(s) URL, got {url[:80]!r}")
    if len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError(f"track(): {url[:80]!r} is not a valid URL (whitespace, control characters or too long)")
    return url


def _pack_id(name: str, value: str) -> bytes:
    """A 32-hex id as its 16 bytes (length byte 0), any other as its length and UTF-8 bytes."""
    if _HEX32.match(value):
        return b"\x00" + bytes.fromhex(value)
    raw = value.encode("utf-8")
    if not 1 <= len(raw) <= 255:
        raise ValueError(f"{name} must be 1 to 255 bytes, got {value!r}")
    return bytes([len(raw)]) + raw


def _unpack_id(payload: bytes, at: int) -> tuple[str, int]:
    if at >= len(payload):
        raise InvalidLinkToken("token is truncated")
    size = payload[at]
    if size == 0:
        end = at + 17
        if end > len(payload):
            raise InvalidLinkToken("token is truncated")
        return payload[at + 1 : end].hex(), end
    end = at + 1 + size
    if end > len(payload):
        raise InvalidLinkToken("token is truncated")
    return payload[at + 1 : end].decode("utf-8"), end


def make_link_token(secret: str | bytes, message_key: str, url: str) -> str:
    """The signed token of one link of one message."""
    check_url(url)
    tag = next(t for t, scheme in _SCHEMES.items() if url[: len(scheme)].lower() == scheme)
    rest = url[len(_SCHEMES[tag]) :]
    payload = bytes([tag]) + _pack_id("message_key", message_key) + rest.encode("utf-8")
    return _signer(secret).sign(_b64(payload)).decode("ascii")


def read_link_token(secret: str | bytes, token: str) -> LinkTarget:
    """Verify and decode a token; InvalidLinkToken on anything but an untouched token."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.match(token):
        raise InvalidLinkToken("token is malformed")
    payload_text, mac_text = token.split(".")
    _unb64(mac_text)  # canonical signature text
    try:
        _signer(secret).unsign(token)
    except BadSignature as exc:
        raise InvalidLinkToken("token signature does not match") from exc
    payload = _unb64(payload_text)
    try:
        if not payload or payload[0] not in _SCHEMES:
            raise InvalidLinkToken("token version is unknown")
        message_key, at = _unpack_id(payload, 1)
        url = check_url(_SCHEMES[payload[0]] + payload[at:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, InvalidLinkToken):
            raise
        raise InvalidLinkToken(f"token payload is invalid: {exc}") from exc
    return LinkTarget(message_key, url)


def link_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{LINK_PATH}{token}"


@dataclass(frozen=True)
class LinkTracker:
    """The links of one message: ``track`` for templates, ``rewrite_html`` for email bodies.
    With ``enabled`` false (``track_links: false``) both leave URLs as they are."""

    secret: str
    public_url: str
    message_key: str
    enabled: bool = True

    def track(self, url: object) -> str:
        target = check_url(url)
        if not self.enabled or self.is_own(target):
            return target
        token = make_link_token(self.secret, self.message_key, target)
        return link_url(self.public_url, token)

    def is_own(self, url: str) -> bool:
        """True for Herald's own pages (unsubscribe, confirmation, tracked links): never rewritten."""
        return url.startswith(self.public_url.rstrip("/") + "/")

    def rewrite_html(self, body: str, *, keep: tuple[str, ...] = ()) -> str:
        """Every ``<a href="http(s)://…">`` through a tracked link, but ``keep`` and Herald's own pages."""
        if not self.enabled:
            return body

        def replace(match: re.Match[str]) -> str:
            url = html.unescape(match.group(3))
            if url in keep or self.is_own(url):
                return match.group(0)
            try:
                tracked = self.track(url)
            except ValueError:
                return match.group(0)  # not a URL we can sign: left as written
            quote = match.group(2)
            return f"{match.group(1)}{quote}{html.escape(tracked, quote=True)}{quote}"

        return _HREF_RE.sub(replace, body)


def untracked(url: object) -> str:
    """``track`` where no message is being built (previews): the URL itself, checked."""
    return check_url(url)


def user_agent_class(user_agent: str | None) -> str:
    """bot (link previews, scanners, scripts, no user agent) | mobile | desktop."""
    if not user_agent or not user_agent.strip() or _BOT_RE.search(user_agent):
        return BOT
    return MOBILE if _MOBILE_RE.search(user_agent) else DESKTOP


# -- landing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Click:
    """One GET of a tracked link whose token held."""

    click_id: str
    message_key: str
    url: str
    user_agent_class: str
    user_agent: str | None
    clicked_at: datetime  # naive UTC
    client_id: str | None = None  # filled from the outbox when loaded
    contact_id: str | None = None

    @classmethod
    def of(cls, target: LinkTarget, user_agent: str | None, clicked_at: datetime) -> Click:
        return cls(
            click_id=uuid.uuid4().hex, message_key=target.message_key, url=target.url,
            user_agent_class=user_agent_class(user_agent),
            user_agent=(user_agent or None) and user_agent[:MAX_USER_AGENT_CHARS], clicked_at=clicked_at,
        )  # fmt: skip

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "clicked_at": self.clicked_at.isoformat()}, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Click:
        data = json.loads(line)
        data["clicked_at"] = datetime.fromisoformat(data["clicked_at"])
        return cls(**data)

    def row(self, landed_at: datetime) -> tuple:
        values = {**asdict(self), "landed_at": landed_at}
        return tuple(values[c] for c in column_names(CLICKS_TABLE))


def clicks_dir(home: Path) -> Path:
    return Path(home) / "landing" / "clicks"


def append_click_file(home: Path, click: Click) -> Path:
    """Embedded mode: the click as one new file, written atomically."""
    name = f"{click.clicked_at.strftime('%Y%m%dT%H%M%S%f')}__{click.click_id}{SUFFIX}"
    return write_atomically(clicks_dir(home), name, click.to_json() + "\n")


def insert_clicks(session: Session, clicks: list[Click]) -> int:
    now = utcnow()
    return session.insert_rows(
        CLICKS_TABLE, column_names(CLICKS_TABLE), [c.row(now) for c in clicks], ignore_existing=True
    )


def pending_click_files(home: Path) -> list[Path]:
    folder = clicks_dir(home)
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def attribute_and_stamp(session: Session, now: datetime) -> int:
    """Fills each click's client and contact from its outbox message, then sets
    ``outbox.clicked_at`` to the message's first click by a person where not set yet.
    Returns how many outbox messages got their first click."""
    if session.scalar(f"select count(*) from {CLICKS_TABLE} where client_id is null"):
        session.execute(
            f"update {CLICKS_TABLE} as c set client_id = o.client_id, contact_id = o.contact_id "
            f"from {OUTBOX_TABLE} as o where c.message_key = o.message_key and c.client_id is null"
        )
    first = (
        f"select message_key, min(clicked_at) as first_click from {CLICKS_TABLE} "
        f"where user_agent_class <> '{BOT}' group by message_key"
    )
    waiting = session.scalar(
        f"select count(*) from {OUTBOX_TABLE} as o inner join ({first}) as f on o.message_key = f.message_key "
        "where o.clicked_at is null"
    )
    if waiting:
        session.execute(
            f"update {OUTBOX_TABLE} as o set clicked_at = f.first_click, updated_at = ? from ({first}) as f "
            "where o.message_key = f.message_key and o.clicked_at is null",
            [now],
        )
    return int(waiting or 0)


def unapplied_clicks(session: Session) -> tuple[int, str]:
    """Clicks a loading run would still attribute (no client yet) or stamp on their message:
    how many, and the latest landing time among them (for a sensor's run key). Before Herald has
    created its tables (a fresh warehouse) there is nothing to apply."""
    for table in (CLICKS_TABLE, OUTBOX_TABLE):
        schema_name, table_name = table.split(".")
        present = session.scalar(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema_name, table_name],
        )
        if not present:
            return 0, ""
    count, latest = session.query(
        f"select count(*), max(c.landed_at) from {CLICKS_TABLE} as c inner join {OUTBOX_TABLE} as o "
        "on o.message_key = c.message_key "
        f"where c.client_id is null or (o.clicked_at is null and c.user_agent_class <> '{BOT}')"
    )[1][0]
    return int(count or 0), str(latest or "")


def load_clicks(warehouse: Warehouse, home: Path) -> int:
    """Loads waiting click files into ``herald_raw.link_clicks`` (a file moves to ``loaded/``
    after its transaction, or to ``rejected/`` with a ``.reason.txt`` when it cannot be read),
    then attributes the clicks and stamps the outbox (:func:`attribute_and_stamp`). Returns how
    many clicks the files held."""
    count = 0
    for path in pending_click_files(home):
        try:
            clicks = [Click.from_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (ValueError, KeyError, TypeError) as exc:
            rejected = clicks_dir(home) / "rejected"
            rejected.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), rejected / path.name)
            (rejected / f"{path.name}.reason.txt").write_text(f"{path.name}: cannot read a click: {exc}\n")
            continue
        with warehouse.session() as s:
            insert_clicks(s, clicks)
        loaded = clicks_dir(home) / "loaded"
        loaded.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), loaded / path.name)
        count += len(clicks)
    with warehouse.session() as s:
        attribute_and_stamp(s, utcnow())
    return count
