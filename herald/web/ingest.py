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
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

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
