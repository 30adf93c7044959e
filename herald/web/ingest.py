"""The ingest API: other systems publish customers, customer attributes and funnel
events for one client. Each request is validated, written as a packet in the client's own
load-map format and dropped in its incoming area (herald/packets/api.py): from there it is
ingested like any upload — every row landed or rejected with its line. Answers 202 with the
packet's path; the packet report and receipt say what became of each row.

Authentication: ``Authorization: Bearer <key>``, checked against the sha256 hashes in the
client's ``ingest_api.key_sha256`` (`herald api-key CLIENT` makes a key and its hash) and those
kept under ``HERALD_HOME/ingest_api_keys/`` (where `herald demo` puts the keys it makes). The key
is checked before the body is read; the body is then parsed strictly (herald.web.guard): a
malformed one is a 400 with the reason, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.clock import utcnow as _clock_now
from herald.config.models import Client
from herald.dropzone import open_dropzone
from herald.packets.api import (
    MAX_RECORDS,
    CustomerIn,
    FunnelEventIn,
    PayloadError,
    drop_api_packet,
    home_key_hashes,
    key_matches,
)
from herald.web.context import web_context
from herald.web.guard import BadInput, parse_json

_bearer = HTTPBearer(auto_error=False, description="The client's API key")


class AuthenticatedJsonRoute(APIRoute):
    """Checks the API key, then the body (strict JSON), before FastAPI parses and validates it:
    a stranger gets 401 whatever the body, a client a 400 naming what is wrong with it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            _client(request, request.path_params.get("client_id", ""), await _bearer(request))
            try:
                parse_json(await request.body())
            except BadInput as exc:
                return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_400_BAD_REQUEST)
            return await handler(request)

        return checked


router = APIRouter(prefix="/api/v1/clients/{client_id}", tags=["ingest"], route_class=AuthenticatedJsonRoute)


class CustomersIn(BaseModel):
    customers: list[CustomerIn] = Field(min_length=1, max_length=MAX_RECORDS)


class AttributesIn(BaseModel):
    """Attribute updates: each item names the customer (external id, phone or email) and the
    attributes to set; a later packet's value wins in the marts."""

    customers: list[CustomerIn] = Field(min_length=1, max_length=MAX_RECORDS)


class FunnelEventsIn(BaseModel):
    events: list[FunnelEventIn] = Field(min_length=1, max_length=MAX_RECORDS)


class Accepted(BaseModel):
    packet: str = Field(
        description="Where the packet waits in the drop zone; its receipt lands beside it once processed"
    )
    rows: int


def _client(
    request: Request, client_id: str, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Client:
    context = web_context(request)
    client = context.deployment.clients.get(client_id)
    hashes = list(client.config.ingest_api.key_sha256) if client and client.config.ingest_api else []
    if client is not None and client.config.ingest_api:
        hashes += home_key_hashes(context.settings.home, client_id)
    # the same answer for an unknown client and a wrong key: no way to probe which clients exist
    if client is None or not key_matches(credentials.credentials if credentials else None, hashes):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown client or API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return client


async def _drop(request: Request, client: Client, kind: str, records: list[dict]) -> Accepted:
    settings = web_context(request).settings

    def write() -> tuple[str, int]:
        zone = open_dropzone(settings.dropzone)
        try:
            return drop_api_packet(zone, client, kind, records, _clock_now())
        finally:
            zone.close()

    try:
        path, rows = await run_in_threadpool(write)
    except PayloadError as exc:
        detail = [{"loc": where, "msg": message} for where, message in exc.problems]
        raise HTTPException(422, detail) from None
    return Accepted(packet=path, rows=rows)


@router.post("/customers", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted,
             summary="Publish customers (new or updated)")  # fmt: skip
async def post_customers(request: Request, body: CustomersIn, client: Client = Depends(_client)) -> Accepted:
    """Customers with canonical fields (external_id, first_name, last_name, email, phone,
    postal_code, time_zone) and the client's attributes by name."""
    return await _drop(request, client, "customers", [c.model_dump(exclude_none=True) for c in body.customers])


@router.post("/customer-attributes", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted,
             summary="Set attributes of known customers")  # fmt: skip
async def post_attributes(request: Request, body: AttributesIn, client: Client = Depends(_client)) -> Accepted:
    """Each item names the customer by external id, phone or email, and carries the attributes to set."""
    return await _drop(request, client, "customers", [c.model_dump(exclude_none=True) for c in body.customers])


@router.post("/funnel-events", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted,
             summary="Publish funnel stage changes")  # fmt: skip
async def post_funnel_events(request: Request, body: FunnelEventsIn, client: Client = Depends(_client)) -> Accepted:
    """Stage changes (to_stage, occurred_at; the customer by external id, phone or email)."""
    return await _drop(request, client, "funnel_events", [e.model_dump(exclude_none=True) for e in body.events])


# -- privacy rights (herald/privacy): the same code as `herald privacy export|erase` -----------


class PrivacyRequestIn(BaseModel):
    contact: str = Field(min_length=1, max_length=320, description="The contact's contact_id, phone number or email")


class ErasureIn(PrivacyRequestIn):
    dry_run: bool = Field(default=False, description="Count what would be erased; change nothing")


class ErasureOut(BaseModel):
    status: str = Field(description="done | dry_run | already_erased")
    request_id: str = Field(description="The herald_ops.privacy_requests row ('' for a dry run or a no-op)")
    contacts: int
    counts: dict[str, int] = Field(description="Rows changed (or that would be) per table")
    message: str


def _privacy_call(request: Request, client: Client, work: Callable[..., Any]) -> Any:
    from herald.portal.store import forget_spooled, move_spool
    from herald.privacy.subject import PrivacyError
    from herald.warehouse.connection import Warehouse

    settings = web_context(request).settings
    try:
        with Warehouse(settings.warehouse).session() as s:
            # the portal's audit rows waiting in its store (DuckDB) join the log first, so the
            # export finds them and the erasure re-keys them
            moved = move_spool(s, settings.warehouse)
            done = work(s, client.client_id, client.default_region, f"api:{client.client_id}", _clock_now())
        forget_spooled(settings.warehouse, moved)
        return done
    except PrivacyError as exc:
        # the message names only the client and what is missing, never someone's data
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.post("/privacy/export", summary="Access export: everything Herald holds on one of your contacts")
async def post_privacy_export(
    request: Request, body: PrivacyRequestIn, client: Client = Depends(_client)
) -> dict[str, Any]:
    """The contact (by contact_id, phone or email) with its attributes, packet rows by packet and
    line, messages, events, replies, consent and suppressions, as JSON. Only this client's
    contacts are found; another's is a 404 like an unknown one. Recorded in
    herald_ops.privacy_requests (counts only)."""
    from herald.privacy.export import collect

    def work(s: Any, client_id: str, region: str, actor: str, now: Any) -> dict[str, Any]:
        return collect(s, client_id, body.contact, region, actor, now, source="api").document()

    return await run_in_threadpool(_privacy_call, request, client, work)


@router.post("/privacy/erase", response_model=ErasureOut,
             summary="Erasure: remove one of your contacts' personal data, keep a hashed suppression")  # fmt: skip
async def post_privacy_erase(request: Request, body: ErasureIn, client: Client = Depends(_client)) -> ErasureOut:
    """Carried out at once, by the same code as `herald privacy erase`, in one transaction: the
    answer says what was erased. A second request is a no-op (`already_erased`); an unknown
    contact (or another client's) is a 404 and changes nothing."""
    from herald.privacy.erase import erase

    def work(s: Any, client_id: str, region: str, actor: str, now: Any) -> ErasureOut:
        done = erase(s, client_id, body.contact, region, actor, now, source="api", dry_run=body.dry_run)
        return ErasureOut(status=done.status, request_id=done.request_id, contacts=done.contacts,
                          counts=done.counts, message=done.message)  # fmt: skip

    return await run_in_threadpool(_privacy_call, request, client, work)


# -- consent events (herald/compliance/optin.py applies them) ----------------------------------


class ConsentEventIn(BaseModel):
    """One consent fact from the client's own system, with where the client got it."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["sms", "email"]
    address: str = Field(min_length=1, max_length=320, description="The phone number (any format) or email")
    kind: Literal["opt_in", "opt_out", "revoke", "confirm"]
    scope: str = Field(default="all", description="'all' or a message type")
    consent_level: Literal["express_written", "prior_express"] | None = None
    source: str = Field(
        min_length=1, max_length=200, description="Where the client got it, e.g. 'front-desk paper form'"
    )
    evidence: str | None = Field(default=None, max_length=4000, description="What proves it (a form id, a recording)")
    occurred_at: datetime = Field(description="When the person gave or revoked consent (UTC when no offset)")
    contact_id: str | None = Field(default=None, max_length=200)
    wording_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        from herald.config.models import check_consent_scope

        return check_consent_scope(value)


class ConsentEventsIn(BaseModel):
    events: list[ConsentEventIn] = Field(min_length=1, max_length=MAX_RECORDS)


class ConsentAccepted(BaseModel):
    event_id: str = Field(description="The landed batch; herald_ops.provider_event_processing says when it is applied")
    events: int


def _consent_address(client: Client, channel: str, text: str) -> str:
    if channel == "sms":
        import phonenumbers

        try:
            number = phonenumbers.parse(text, client.default_region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise ValueError(f"{text!r} is not a valid phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(f"{text!r} is not an email address: {exc}") from None


@router.post("/consent-events", status_code=status.HTTP_202_ACCEPTED, response_model=ConsentAccepted,
             summary="Record consent events (opt-in, opt-out, revoke, confirm) with their source and evidence")  # fmt: skip
async def post_consent_events(request: Request, body: ConsentEventsIn,
                              client: Client = Depends(_client)) -> ConsentAccepted:  # fmt: skip
    """Each event names the channel, the address, its kind and scope ('all' or a message type),
    the source you got it from and its evidence. All are checked first: one bad event (an
    unknown scope, an address that is not one) is a 422 naming it, and none is recorded."""
    import hashlib
    import json

    problems, records = [], []
    for index, item in enumerate(body.events):
        try:
            address = _consent_address(client, item.channel, item.address)
        except ValueError as exc:
            problems.append({"loc": ["body", "events", index, "address"], "msg": str(exc)})
            continue
        occurred = item.occurred_at
        if occurred.tzinfo is not None:
            occurred = occurred.astimezone(UTC).replace(tzinfo=None)
        records.append({**item.model_dump(exclude_none=True), "address": address, "occurred_at": occurred.isoformat()})
    if problems:
        raise HTTPException(422, problems)
    payload = {"client_id": client.client_id, "events": records}
    event_id = "consent_api:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
    from herald.compliance.optin import API_EVENT
    from herald.events.landing import ProviderEvent

    event = ProviderEvent(event_id=event_id, source="api", kind=API_EVENT, payload=payload, received_at=_clock_now())
    try:
        await run_in_threadpool(web_context(request).sink().append, event)
    except Exception:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "could not record the events; try again") from None
    return ConsentAccepted(event_id=event_id, events=len(records))
