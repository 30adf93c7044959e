"""The portal's Campaigns pages under ``/app/c/<client_id>/campaigns``: the list with each
campaign's status, one campaign (status, funnel, A/B results, pause/resume, a test message to
oneself), and the message review of its next occurrence (rendered messages per contact and who
is left out, why: the same function as ``herald campaign preview``).

Every route depends on :func:`herald.web.portal.client_user` (another client's campaign is a
404, like one that does not exist), every action on :func:`herald.web.portal.acting_user` (a
viewer gets 403) and the CSRF check. Page views are audited before the page is shown (the review,
which shows contacts' messages, too); a pause, resume, phone change or test message is audited
in the transaction that makes it (:mod:`herald.portal.campaigns`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from herald.contacts.phones import mask_phone
from herald.portal import campaigns as portal_campaigns
from herald.portal.accounts import User
from herald.portal.reads import PortalReadError, reader_for
from herald.warehouse.connection import WarehouseError
from herald.web.context import web_context
from herald.web.portal import (
    ActingUser,
    ClientUser,
    PortalPage,
    action_route,
    audit_view,
    guarded,
    not_found,
    render,
    router,
    unavailable,
)
from herald.web.portal_pages import _lock, _read

log = logging.getLogger("herald.web.portal_campaigns")
_review_lock = threading.Lock()
T = TypeVar("T")


def _deployment(request: Request) -> Any:
    return web_context(request).deployment


def _known(request: Request, client_id: str, campaign: str) -> None:
    """404 for a campaign the client does not have (before any audit row or write)."""
    if campaign not in _deployment(request).clients[client_id].campaigns:
        raise not_found()


def _write(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """A write of the domain layer under the portal's DuckDB lock; a busy warehouse → 503."""

    def write() -> T:
        with _lock(request):
            return fn(web_context(request).settings, *args)

    return guarded(write, missing=portal_campaigns.CampaignNotFound, busy=WarehouseError, logger=log,
                   what="a campaign action could not be written")  # fmt: skip


@router.get("/c/{client_id}/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, client_id: str, user: ClientUser) -> Response:
    audit_view(request, user, client_id, request.url.path)
    listed, as_of = _read(request, portal_campaigns.campaign_list, _deployment(request), client_id)
    return render(request, "campaigns.html", {"client_id": client_id, "campaigns": listed, "as_of": as_of})


def _campaign_page(
    request: Request, client_id: str, campaign: str, user: User, *, error: str | None = None,
    notice: str | None = None, status: int = 200, review: Any = None,
) -> Response:  # fmt: skip
    try:
        detail = _read(request, portal_campaigns.campaign_detail, _deployment(request), client_id, campaign)
    except portal_campaigns.CampaignNotFound as exc:
        raise not_found() from exc
    phone = _read(request, portal_campaigns.saved_phone, user)
    config = _deployment(request).clients[client_id].campaigns[campaign]
    channels = sorted({c for step in config.steps if hasattr(step, "channels") for c in step.channels})
    return render(request, "campaign.html",
                  {"client_id": client_id, "d": detail, "s": detail.status, "can_act": user.can_act,
                   "error": error, "notice": notice, "review": review, "channels": channels,
                   "own_phone": mask_phone(phone) if phone else None}, status)  # fmt: skip


@router.get("/c/{client_id}/campaigns/{campaign}", response_class=HTMLResponse)
def campaign_page(request: Request, client_id: str, campaign: str, user: ClientUser) -> Response:
    _known(request, client_id, campaign)
    audit_view(request, user, client_id, request.url.path)
    return _campaign_page(request, client_id, campaign, user)


@router.get("/c/{client_id}/campaigns/{campaign}/review", response_class=HTMLResponse)
def review_page(request: Request, client_id: str, campaign: str, user: ClientUser) -> Response:
    """The next occurrence's messages, per contact: slow (a scratch copy and the plan's dbt
    models, as ``herald campaign preview``), so it is a page of its own, reached by a link."""
    _known(request, client_id, campaign)
    audit_view(request, user, client_id, request.url.path)  # it shows contacts' messages
    context = web_context(request)
    if context.settings.warehouse.engine == "postgres":
        # the copy is a CREATE DATABASE … TEMPLATE of the warehouse, refused while a session is
        # connected to it: the portal's read pool lets go first (it reconnects on the next read)
        reader_for(context.settings.warehouse).close()
    try:
        # one review at a time in this process (dbt runs in-process and sets its environment);
        # on DuckDB the copy attaches the live file read-only: never beside the portal's own
        # writes, so the portal's lock is held while the copy is made (not while dbt plans on it)
        with _review_lock:
            made = portal_campaigns.review(
                context.settings, context.deployment, context.links, client_id, campaign,
                hide_contact_details=user.hide_contact_details, copy_guard=_lock(request),
            )  # fmt: skip
    except Exception as exc:  # a busy warehouse, a failed dbt run: said on the page, never a 500
        if isinstance(exc, PortalPage):
            raise
        log.warning("the review of %s/%s failed: %s", client_id, campaign, str(exc)[:500])
        return _campaign_page(request, client_id, campaign, user, status=503,
                              error="The message review could not be made now (a run may be using the warehouse): "
                                    "try again in a minute. Nothing was changed.")  # fmt: skip
    return _campaign_page(request, client_id, campaign, user, review=made)


def _action(request: Request, client_id: str, campaign: str, user: User, run: Callable[[], str]) -> Response:
    _known(request, client_id, campaign)
    try:
        notice = run()
    except portal_campaigns.CampaignActionError as exc:
        return _campaign_page(request, client_id, campaign, user, status=400, error=f"Nothing was changed: {exc}.")
    except PortalReadError as exc:
        raise unavailable() from exc
    return _campaign_page(request, client_id, campaign, user, notice=notice)


def _switch(request: Request, client_id: str, campaign: str, user: User, fn: Callable[..., Any], unchanged: str,
            changed: Callable[[Any], str]) -> Response:  # fmt: skip
    """A pause or resume (``fn``): its notice is ``unchanged`` when the campaign already was so."""

    def run() -> str:
        done = _write(request, fn, _deployment(request), client_id, campaign, user)
        return changed(done) if done.changed else unchanged

    return _action(request, client_id, campaign, user, run)


@action_route("/c/{client_id}/campaigns/{campaign}/pause")
def pause(request: Request, client_id: str, campaign: str, user: ActingUser) -> Response:
    return _switch(request, client_id, campaign, user, portal_campaigns.pause_campaign, f"{campaign} was already paused.",
                   lambda done: f"Paused {campaign}: nothing more is planned, and its {done.queued} queued message(s) "
                                "are cancelled if they fall due before you resume it.")  # fmt: skip


@action_route("/c/{client_id}/campaigns/{campaign}/resume")
def resume(request: Request, client_id: str, campaign: str, user: ActingUser) -> Response:
    return _switch(request, client_id, campaign, user, portal_campaigns.resume_campaign,
                   f"{campaign} was not paused in the portal.",
                   lambda done: f"Resumed {campaign}: the next send pass plans its messages again.")  # fmt: skip


@action_route("/c/{client_id}/campaigns/{campaign}/phone")
def save_phone(
    request: Request, client_id: str, campaign: str, user: ActingUser,
    phone: Annotated[str, Form(max_length=40)] = "", confirm: Annotated[str, Form(max_length=40)] = "",
) -> Response:  # fmt: skip
    def run() -> str:
        masked = _write(request, portal_campaigns.set_own_phone, _deployment(request), client_id, user, phone, confirm)
        return f"Saved your phone {masked} for test texts."

    return _action(request, client_id, campaign, user, run)


@action_route("/c/{client_id}/campaigns/{campaign}/test")
def send_test(
    request: Request, client_id: str, campaign: str, user: ActingUser, channel: Annotated[str, Form(max_length=10)] = ""
) -> Response:
    context = web_context(request)

    def run() -> str:
        sent = _write(request, portal_campaigns.send_test, context.deployment, context.settings.config_dir,
                      context.links, client_id, campaign, user, channel)  # fmt: skip
        if sent.status == "held":
            return f"The test {sent.channel} to {sent.to_masked} is held, not sent: {sent.status_reason}"
        return (f"A test {sent.channel} of step {sent.step} (variant {sent.variant}) is queued to you at "
                f"{sent.to_masked}; the next delivery run sends it.")  # fmt: skip

    return _action(request, client_id, campaign, user, run)
