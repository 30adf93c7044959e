"""The portal's Reports and billing page under ``/app/c/<client_id>/reports``: the client report
as HTML, PDF or XLSX over a chosen period (the code of ``herald report``), the credit balance
and the credit transactions, newest first, 50 a page.

Every route depends on :func:`herald.web.portal.client_user` (a user of another client gets
404). The page view is audited (``portal_view``) before the page is shown, a download
(``portal_report_downloaded``, with its format and period) before the file is sent. The report
holds totals only, no contact's address, so every role of the client may download it.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from herald.portal import audit as portal_audit
from herald.portal import reports as portal_reports
from herald.portal.accounts import User
from herald.portal.reads import PortalReadError
from herald.reports.client_report import ReportError
from herald.warehouse.connection import WarehouseError
from herald.web.context import web_context
from herald.web.portal import PREFIX, audit_view, client_user, db, render, unavailable

log = logging.getLogger("herald.web.portal_reports")
router = APIRouter(prefix=PREFIX, tags=["portal"], include_in_schema=False)


def _page(request: Request, client_id: str, page: int = 1, *, error: str | None = None, status: int = 200,
          fmt: str = "pdf", period: int = portal_reports.DEFAULT_PERIOD_DAYS) -> Response:  # fmt: skip
    try:
        credits = portal_reports.credit_transactions(web_context(request).settings, client_id, page)
    except PortalReadError as exc:
        log.warning("the reports page could not read the warehouse: %s", str(exc)[:300])
        raise unavailable() from exc
    return render(request, "reports.html",
                  {"client_id": client_id, "credits": credits, "formats": portal_reports.FORMATS,
                   "periods": portal_reports.PERIODS, "chosen_format": fmt, "chosen_period": period,
                   "error": error}, status)  # fmt: skip


@router.get("/c/{client_id}/reports", response_class=HTMLResponse)
def reports_page(
    request: Request, client_id: str, user: Annotated[User, Depends(client_user)], page: str = "1"
) -> Response:
    number = int(page) if page.strip().isdigit() and len(page) < 9 else 1
    audit_view(request, user, client_id, request.url.path)
    return _page(request, client_id, number)


@router.get("/c/{client_id}/reports/download")
def report_download(
    request: Request,
    client_id: str,
    user: Annotated[User, Depends(client_user)],
    format: str = "pdf",  # the query parameter's name
    period: str = str(portal_reports.DEFAULT_PERIOD_DAYS),
) -> Response:
    try:
        fmt, days = portal_reports.check_choice(format[:20], period[:20])
    except portal_reports.ReportRequestError as exc:
        audit_view(request, user, client_id, request.url.path)
        return _page(request, client_id, error=f"Nothing was downloaded: {exc}", status=400)
    context = web_context(request)
    try:
        report, as_of = portal_reports.client_report(context.settings, context.deployment, client_id, days)
        made = portal_reports.render_download(report, fmt, as_of)
    except ReportError as exc:
        audit_view(request, user, client_id, request.url.path)
        return _page(request, client_id, error=f"Nothing was downloaded: {exc}.", status=400, fmt=fmt, period=days)
    except (PortalReadError, WarehouseError) as exc:
        log.warning("a report could not be made: %s", str(exc)[:300])
        raise unavailable() from exc
    with db(context) as s:  # the row first: no audit row, no file
        portal_audit.record(s, portal_audit.actor(user.email), portal_audit.REPORT_DOWNLOADED, client_id,
                            made.file_name, {"format": fmt, "period_days": days,
                                             "start": report.start_date.isoformat(),
                                             "end": report.end_date.isoformat(), "size_bytes": len(made.content)})  # fmt: skip
    return Response(made.content, media_type=made.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{made.file_name}"',
                             "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})  # fmt: skip
