"""Tracked links (``GET /l/<token>``): verify the signed token, land the click, redirect.

The token (:mod:`herald.campaigns.tracking`) carries the message key and the destination URL
under an HMAC, so only URLs that were in the rendered message redirect; anything else (a
changed character, another key's token, a made-up path) gets a plain 404 page and lands nothing.
A click lands as a file under ``$HERALD_HOME/landing/clicks/`` (embedded DuckDB: the service
never writes the warehouse) or as a row of ``herald_raw.link_clicks`` (PostgreSQL), with the
user agent's class (bot / mobile / desktop); a HEAD request (what many link checkers send) is
answered without landing anything. Landing never stands between a person and the link: if it
fails, the error is logged and the redirect still happens.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from herald.campaigns.tracking import (
    Click,
    InvalidLinkToken,
    append_click_file,
    insert_clicks,
    read_link_token,
    utcnow,
)
from herald.events.landing import TableSink
from herald.web.context import WebContext, web_context

log = logging.getLogger("herald.web.links")
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
}
NOT_FOUND_HTML = (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    '<meta name="robots" content="noindex">\n<title>Link not found</title>\n</head>\n'
    "<body>\n<main>\n<h1>Link not found</h1>\n<p>This link is incomplete or has been changed. Please open it "
    "again from the message you received.</p>\n</main>\n</body>\n</html>\n"
)

router = APIRouter(tags=["links"])


def land_click(context: WebContext, click: Click) -> None:
    """Into ``herald_raw.link_clicks`` on PostgreSQL, else as a file for the sensor's run."""
    sink = context.sink()
    if isinstance(sink, TableSink):
        with sink.warehouse.session() as session:
            insert_clicks(session, [click])
    else:
        append_click_file(Path(context.settings.home), click)


@router.api_route("/l/{token}", methods=["GET", "HEAD"], include_in_schema=False)
async def follow_link(token: str, request: Request) -> Response:
    context = web_context(request)
    try:
        target = read_link_token(context.links.secret, token)
    except InvalidLinkToken as exc:
        log.info("link refused with 404: %s", exc)
        return HTMLResponse(NOT_FOUND_HTML, status_code=404, headers=HEADERS)
    if request.method == "GET":
        click = Click.of(target, request.headers.get("user-agent"), utcnow())
        try:
            await run_in_threadpool(land_click, context, click)
        except Exception:  # the person still gets where they were going
            log.exception("click %s on message %s could not be landed", click.click_id, click.message_key)
        else:
            log.info("click %s on message %s (%s) landed", click.click_id, click.message_key, click.user_agent_class)
    return RedirectResponse(target.url, status_code=302, headers=HEADERS)
