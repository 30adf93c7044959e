"""The portal's Packets and Contacts pages under ``/app/c/<client_id>/``: the packets list with
each packet's timeline and the upload form, one packet (timeline, rejects, receipt, rejects as
CSV), the contact search, one contact (consent history, suppressions, last messages, block and
unblock) and the missed contacts.

Every route depends on :func:`herald.web.portal.client_user` (a user of another client gets 404),
every action on :func:`herald.web.portal.acting_user` (a viewer gets 403) and the CSRF check.
Every page view is audited before the page is shown; an upload is audited after the file is in
the drop zone; a block or unblock is audited by :mod:`herald.compliance.manual` in the
transaction that makes it (actor ``portal:<email>``). Reads go through
:mod:`herald.portal.reads` (the snapshot on DuckDB), so a page never waits behind a run.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from herald.compliance.manual import BlockError
from herald.portal import audit as portal_audit
from herald.portal import contacts as portal_contacts
from herald.portal import packets as portal_packets
from herald.portal.accounts import User
from herald.portal.reads import PortalReadError, current_snapshot
from herald.warehouse.connection import WarehouseError
from herald.web.context import WebContext, web_context
from herald.web.guard import Larger
from herald.web.portal import (
    _duckdb_lock,
    acting_user,
    audit_view,
    check_csrf,
    client_user,
    db,
    not_found,
    render,
    router,
    unavailable,
)

log = logging.getLogger("herald.web.portal_pages")
ENV_MAX_UPLOAD_BYTES = "HERALD_PORTAL_MAX_UPLOAD_BYTES"
CHANNELS = {"sms": "phone", "email": "email"}
UPLOAD_PATH = re.compile(r"/app/c/[^/]+/packets")
FORM_SLACK_BYTES = 64 * 1024  # the multipart framing and the form's other fields
T = TypeVar("T")


def _lock(request: Request) -> Any:
    """The portal's DuckDB lock when the process may open the live file (the first snapshot, a
    block's write and its republish); a no-op otherwise."""
    target = web_context(request).settings.warehouse
    if target.engine == "duckdb":
        return _duckdb_lock
    return threading.Lock()


def _read(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A read of the domain layer; not found → 404, an unreadable warehouse → 503."""
    settings = web_context(request).settings
    first = settings.warehouse.engine == "duckdb" and current_snapshot(settings.warehouse) is None
    try:
        if first:  # the first snapshot opens the live file: not beside the portal's own writes
            with _duckdb_lock:
                return fn(settings, *args, **kwargs)
        return fn(settings, *args, **kwargs)
    except (portal_packets.PacketNotFound, portal_contacts.ContactNotFound) as exc:
        raise not_found() from exc
    except PortalReadError as exc:
        log.warning("a portal page could not read the warehouse: %s", str(exc)[:300])
        raise unavailable() from exc


def max_upload_bytes(environ: Mapping[str, str]) -> int:
    """The upload limit: ``HERALD_PORTAL_MAX_UPLOAD_BYTES``, else the packets module's default."""
    raw = environ.get(ENV_MAX_UPLOAD_BYTES, "")
    return int(raw) if raw.strip().isdigit() and int(raw) > 0 else portal_packets.MAX_UPLOAD_BYTES


def _max_upload(request: Request) -> int:
    return max_upload_bytes(web_context(request).environ)


def upload_body_limit(context: WebContext, scope: Mapping[str, Any]) -> Larger | None:
    """For :class:`herald.web.guard.BodyLimit`: the upload's POST may carry the upload limit
    (plus the form's other fields), streamed, not held in memory; every other request has the
    usual limit."""
    if scope.get("method") != "POST" or not UPLOAD_PATH.fullmatch(scope.get("path", "")):
        return None
    limit = max_upload_bytes(context.environ)
    return Larger(limit + FORM_SLACK_BYTES, f"The file is larger than the upload limit of {_size(limit)}: split it, "
                  "or send it through SFTP or S3. Nothing was uploaded.")  # fmt: skip


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def _packet_types(request: Request, client_id: str) -> list[str]:
    return sorted(web_context(request).deployment.clients[client_id].load_maps)


# --- packets ----------------------------------------------------------------------------------


def _packets_page(
    request: Request, client_id: str, user: User, *, error: str | None = None, chosen: str = "", status: int = 200
) -> Response:
    listed = _read(request, portal_packets.list_packets, client_id)
    return render(request, "packets.html",
                  {"client_id": client_id, "packets": listed, "packet_types": _packet_types(request, client_id),
                   "can_upload": user.can_act, "error": error, "chosen": chosen,
                   "max_size": _size(_max_upload(request))}, status)  # fmt: skip


@router.get("/c/{client_id}/packets", response_class=HTMLResponse)
def packets_page(request: Request, client_id: str, user: Annotated[User, Depends(client_user)]) -> Response:
    audit_view(request, user, client_id, request.url.path)
    return _packets_page(request, client_id, user)


@router.post("/c/{client_id}/packets", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
def upload(
    request: Request,
    client_id: str,
    user: Annotated[User, Depends(acting_user)],
    packet_type: Annotated[str, Form(max_length=200)] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    context = web_context(request)
    types = _packet_types(request, client_id)
    if not file or not file.filename:
        return _packets_page(request, client_id, user, error="Choose a CSV file to upload.", chosen=packet_type,
                             status=400)  # fmt: skip
    if packet_type not in types:
        shown = packet_type[:60] or "(none)"
        return _packets_page(request, client_id, user, status=400, error=(
            f"Unknown packet type {shown!r}: choose one of {', '.join(types) or 'none (this client has none)'}."))  # fmt: skip
    try:
        done = portal_packets.upload_packet(context.settings, client_id, packet_type, file.filename, file.file,
                                            max_bytes=_max_upload(request))  # fmt: skip
    except portal_packets.UploadError as exc:
        return _packets_page(request, client_id, user, error=f"Nothing was uploaded: {exc}.", chosen=packet_type,
                             status=400)  # fmt: skip
    finally:
        file.file.close()
    with db(context) as s:
        portal_audit.record(s, portal_audit.actor(user.email), portal_audit.PACKET_UPLOADED, client_id,
                            done.zone_path, {"packet_type": packet_type, "size_bytes": done.size_bytes,
                                             "sha256": done.sha256})  # fmt: skip
    name = done.zone_path.rsplit("/", 1)[-1]
    return render(request, "uploaded.html",
                  {"client_id": client_id, "name": name, "packet_type": packet_type, "upload": done})  # fmt: skip


@router.get("/c/{client_id}/packets/{packet_id}", response_class=HTMLResponse)
def packet_page(
    request: Request, client_id: str, packet_id: str, user: Annotated[User, Depends(client_user)]
) -> Response:
    found = _read(request, portal_packets.packet, client_id, packet_id)
    audit_view(request, user, client_id, request.url.path)
    rejected = _read(request, portal_packets.rejects, client_id, packet_id)
    receipt = _read(request, portal_packets.receipt, client_id, packet_id)
    return render(request, "packet.html",
                  {"client_id": client_id, "packet": found, "rejects": rejected, "receipt": receipt,
                   "reject_limit": 200})  # fmt: skip


@router.get("/c/{client_id}/packets/{packet_id}/rejects.csv")
def rejects_download(
    request: Request, client_id: str, packet_id: str, user: Annotated[User, Depends(client_user)]
) -> Response:
    data = _read(request, portal_packets.rejects_csv, client_id, packet_id,
                 include_raw=not user.hide_contact_details)  # fmt: skip
    audit_view(request, user, client_id, request.url.path)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", packet_id)[:100]
    return Response(data, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{safe}-rejects.csv"',
                             "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})  # fmt: skip


# --- contacts ---------------------------------------------------------------------------------


@router.get("/c/{client_id}/contacts", response_class=HTMLResponse)
def contacts_page(
    request: Request, client_id: str, user: Annotated[User, Depends(client_user)], q: str = ""
) -> Response:
    query = q[:200]
    # the path only: what was typed may be someone's number or address
    audit_view(request, user, client_id, request.url.path)
    found = (
        _read(
            request, portal_contacts.search_contacts, client_id, query, hide_contact_details=user.hide_contact_details
        )
        if query.strip()
        else []
    )
    return render(request, "contacts.html", {"client_id": client_id, "q": query, "found": found})


def _contact_page(
    request: Request, client_id: str, contact_id: str, user: User, *, error: str | None = None,
    notice: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    detail = _read(request, portal_contacts.contact_detail, client_id, contact_id,
                   hide_contact_details=user.hide_contact_details)  # fmt: skip
    channels = [(c, label) for c, label in CHANNELS.items() if getattr(detail.contact, label)]
    blocked = {s["channel"] for s in detail.suppressions if s["reason"] == "manual_block"}
    return render(request, "contact.html",
                  {"client_id": client_id, "detail": detail, "c": detail.contact, "channels": channels,
                   "blocked": blocked, "can_act": user.can_act, "error": error, "notice": notice}, status)  # fmt: skip


@router.get("/c/{client_id}/contacts/{contact_id}", response_class=HTMLResponse)
def contact_page(
    request: Request, client_id: str, contact_id: str, user: Annotated[User, Depends(client_user)]
) -> Response:
    _read(request, portal_contacts.contact_detail, client_id, contact_id)  # 404 before an audit row
    with db(web_context(request)) as s:
        portal_audit.record(s, portal_audit.actor(user.email), portal_audit.VIEW, client_id, request.url.path,
                            contact_id=contact_id)  # fmt: skip
    return _contact_page(request, client_id, contact_id, user)


def _block_action(request: Request, client_id: str, contact_id: str, user: User, channel: str, reason: str,
                  lift: bool) -> Response:  # fmt: skip
    settings = web_context(request).settings
    real = _read(request, portal_contacts.contact_detail, client_id, contact_id).contact  # the unmasked address
    address = getattr(real, CHANNELS[channel]) if channel in CHANNELS else None
    if not address:
        return _contact_page(request, client_id, contact_id, user, status=400,
                             error="Choose the contact's phone or email to block or unblock.")  # fmt: skip
    change = portal_contacts.unblock_contact if lift else portal_contacts.block_contact
    try:
        with _lock(request):
            done = change(settings, client_id, address, reason[:500], portal_audit.actor(user.email))
    except BlockError as exc:
        return _contact_page(request, client_id, contact_id, user, error=f"Nothing was changed: {exc}.", status=400)
    except WarehouseError as exc:
        log.warning("a block could not be written: %s", str(exc)[:300])
        raise unavailable() from exc
    if lift:
        text = f"Unblocked {done.address_masked}."
        if done.opted_out:
            text += " It stays suppressed: the person opted out, and only they can opt back in."
    else:
        text = f"Blocked {done.address_masked}: {done.count} queued message(s) cancelled."
    return _contact_page(request, client_id, contact_id, user, notice=text)


@router.post("/c/{client_id}/contacts/{contact_id}/block", response_class=HTMLResponse,
             dependencies=[Depends(check_csrf)])  # fmt: skip
def block(
    request: Request,
    client_id: str,
    contact_id: str,
    user: Annotated[User, Depends(acting_user)],
    channel: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    return _block_action(request, client_id, contact_id, user, channel, reason, lift=False)


@router.post("/c/{client_id}/contacts/{contact_id}/unblock", response_class=HTMLResponse,
             dependencies=[Depends(check_csrf)])  # fmt: skip
def unblock(
    request: Request,
    client_id: str,
    contact_id: str,
    user: Annotated[User, Depends(acting_user)],
    channel: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    return _block_action(request, client_id, contact_id, user, channel, reason, lift=True)


@router.get("/c/{client_id}/missed", response_class=HTMLResponse)
def missed_page(request: Request, client_id: str, user: Annotated[User, Depends(client_user)]) -> Response:
    audit_view(request, user, client_id, request.url.path)
    missed = _read(request, portal_contacts.missed_contacts, client_id)
    return render(request, "missed.html", {"client_id": client_id, "missed": missed})
