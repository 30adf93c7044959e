"""The portal under ``/app``: sign-in with a password then a TOTP code (or a recovery code), 2FA
enrollment, forgotten password, sign-out, the operator's client picker, each client's dashboard
and its users page.

Security by construction:

- **Sessions** live on the server (``herald_ops.portal_sessions``, keyed by a hash); the cookie
  carries the session id, signed, ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over https, scoped
  to ``/app``. Each sign-in stage starts a new id (no session fixation); sign-out deletes it.
- **CSRF**: every form carries ``csrf_token`` = HMAC(key, the browser's CSRF cookie and its
  session); a POST without it or with a forged one gets a 403 page and changes nothing.
- **Client scope on the server**: every ``/app/c/{client_id}/...`` route depends on
  :func:`client_user`, which answers 404 (the same as an unknown client) to a user of another
  client. A viewer cannot post an action (403).
- **Audit**: sign-ins, failures, lockouts, resets, page views and actions go to
  ``herald_ops.audit_log`` in the same transaction as what they record (on DuckDB, the portal
  store's spool of it, moved into the warehouse's log between runs).

The account tables and the portal's audit rows are in the warehouse on PostgreSQL, and on the
embedded DuckDB in a store of their own that no run holds (:mod:`herald.portal.store`), so a
sign-in or a page view never waits behind a run; a store that cannot be written within a few
seconds gives a "Please try again" page (503), never a half-applied change.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from herald.portal import accounts
from herald.portal import audit as portal_audit
from herald.portal.accounts import AccountError, User
from herald.portal.dashboard import read_dashboard
from herald.portal.reads import current_snapshot
from herald.portal.store import PortalStore
from herald.warehouse.connection import WarehouseError
from herald.web.context import WebContext, web_context
from herald.web.throttle import FORGOT, LOGIN, Throttle

log = logging.getLogger("herald.web.portal")
T = TypeVar("T")
PREFIX = "/app"
STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates" / "portal"
SESSION_COOKIE = "herald_session"
CSRF_COOKIE = "herald_csrf"
ENROLL_COOKIE = "herald_enroll"
CSRF_FIELD = "csrf_token"
WRITE_WAIT_SECONDS = 5.0
ENROLL_MAX_AGE = 600
ENV_EMAIL_FROM = "HERALD_PORTAL_EMAIL_FROM"
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # reset links carry their token in the path
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
router = APIRouter(prefix=PREFIX, tags=["portal"], include_in_schema=False)
# DuckDB: one database instance per process, opened the same way by every thread (read-write)
_duckdb_lock = threading.Lock()


# --- errors that become pages -----------------------------------------------------------------


class PortalPage(Exception):
    """A whole-page answer from inside a dependency: an error page or a redirect."""

    def __init__(self, status: int, title: str, text: str, location: str | None = None):
        super().__init__(title)
        self.status, self.title, self.text, self.location = status, title, text, location


def not_found() -> PortalPage:
    return PortalPage(404, "Not found", "There is nothing here, or you do not have access to it.")


def unavailable() -> PortalPage:
    return PortalPage(503, "Please try again", "The portal could not reach its data just now. "
                      "Please try again in a few moments.")  # fmt: skip


async def page_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PortalPage)
    if exc.location:
        return RedirectResponse(exc.location, status_code=303, headers=HEADERS)
    return render(request, "message.html", {"title": exc.title, "text": exc.text}, exc.status)


# --- keys, cookies, CSRF ----------------------------------------------------------------------


def portal_key(context: WebContext) -> bytes:
    """The portal's signing key, derived from Herald's secret (HERALD_SECRET_KEY) for this use only."""
    return hmac.new(context.links.secret.encode(), b"herald-portal", hashlib.sha256).digest()


def _signer(context: WebContext, salt: str) -> Any:
    from itsdangerous import Signer

    return Signer(portal_key(context), salt=salt)


def _session_id(request: Request) -> str | None:
    from itsdangerous import BadSignature

    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        return _signer(web_context(request), "session").unsign(raw).decode()
    except BadSignature:
        return None


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or web_context(request).links.public_url.startswith("https://")


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    value = _signer(web_context(request), "session").sign(session_id).decode()
    response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="lax", secure=_secure(request), path=PREFIX)


def csrf_token(request: Request, csrf_cookie: str) -> str:
    anchor = f"{csrf_cookie}|{request.cookies.get(SESSION_COOKIE, '')}"
    return hmac.new(portal_key(web_context(request)), anchor.encode(), hashlib.sha256).hexdigest()


async def check_csrf(request: Request) -> None:
    """Every POST: the form's token must be the one this browser's cookies give (403 otherwise)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    cookie = request.cookies.get(CSRF_COOKIE)
    if not isinstance(sent, str) or not cookie or not hmac.compare_digest(sent, csrf_token(request, cookie)):
        log.warning("portal refused a POST to %s: CSRF token missing or wrong", request.url.path)
        raise PortalPage(403, "This form has expired",
                         "The form was not sent from this portal page, or it is too old. Nothing was changed: "
                         "go back, reload the page and try again.")  # fmt: skip


def render(request: Request, name: str, values: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A template with the CSRF token its forms need (and the cookie it comes from)."""
    cookie = request.cookies.get(CSRF_COOKIE)
    fresh = cookie is None
    if cookie is None:
        cookie = secrets.token_urlsafe(32)
    user: User | None = getattr(request.state, "portal_user", None)
    context = web_context(request)
    clients = {cid: c.config.name for cid, c in context.deployment.clients.items()}
    response = templates.TemplateResponse(
        request, name,
        {"csrf_field": CSRF_FIELD, "csrf": csrf_token(request, cookie), "user": user, "client_names": clients,
         **values},
        status_code=status, headers=HEADERS,
    )  # fmt: skip
    if fresh:
        response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="lax", secure=_secure(request), path=PREFIX)
    return response


def redirect(location: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(location, status_code=status, headers=HEADERS)


def safe_next(target: str | None) -> str | None:
    """Only a path of this portal: never another host (no open redirect)."""
    if not target or not target.startswith(PREFIX + "/") or target.startswith("//") or "\\" in target:
        return None
    if any(ch in target for ch in "\r\n\t") or "://" in target:
        return None
    return target


# --- the warehouse ----------------------------------------------------------------------------


@contextmanager
def db(context: WebContext) -> Iterator[accounts.Session]:
    """One transaction on the portal's own tables, its accounts and audit rows (a 503 page when
    their store is busy or down): the warehouse on PostgreSQL, the portal store beside the
    embedded DuckDB file, which no run holds (:mod:`herald.portal.store`)."""
    store = PortalStore(context.settings.warehouse, warehouse_lock=_duckdb_lock)
    try:
        with store.session(lock_wait_seconds=WRITE_WAIT_SECONDS) as s:
            yield s
    except WarehouseError as exc:
        log.warning("portal could not use its store: %s", str(exc)[:300])
        raise unavailable() from exc
    except Exception as exc:
        if isinstance(exc, PortalPage):
            raise
        if "portal_" in str(exc) and ("does not exist" in str(exc) or "not exist" in str(exc).lower()):
            log.error("the portal tables are missing: run `herald db upgrade` (or `herald users add`)")
            raise unavailable() from exc
        raise


# --- who is asking ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    user: User
    stage: str
    session_id: str


def _lookup(request: Request) -> Signed | None:
    session_id = _session_id(request)
    if session_id is None:
        return None
    with db(web_context(request)) as s:
        found = accounts.session_user(s, session_id)
    if found is None:
        return None
    return Signed(found[0], found[1], session_id)


def _to_login(request: Request) -> PortalPage:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return PortalPage(303, "", "", location=f"{PREFIX}/login?next={quote(target, safe='')}")


def signed_in(request: Request) -> User:
    """The signed-in user (password and second factor done); else a redirect to the sign-in."""
    found = _lookup(request)
    if found is None or found.stage != accounts.STAGE_FULL:
        raise _to_login(request)
    request.state.portal_user = found.user
    request.state.portal_session = found.session_id
    return found.user


def pending(request: Request) -> Signed:
    """A session between the password and the second factor."""
    found = _lookup(request)
    if found is None or found.stage != accounts.STAGE_PASSWORD:
        raise PortalPage(303, "", "", location=f"{PREFIX}/login")
    return found


def client_user(client_id: str, request: Request, user: Annotated[User, Depends(signed_in)]) -> User:
    """The client scope, on the server: a user of another client (or an unknown client) gets 404
    and nothing of it."""
    if client_id not in web_context(request).deployment.clients or not user.can_see(client_id):
        raise not_found()
    request.state.portal_client = client_id
    return user


def acting_user(user: Annotated[User, Depends(client_user)]) -> User:
    """A user who may change something (not a viewer)."""
    if not user.can_act:
        raise PortalPage(403, "Read-only access", "Your role can view this client's pages but not change anything.")
    return user


def admin_user(user: Annotated[User, Depends(acting_user)]) -> User:
    if user.role not in (accounts.OPERATOR, accounts.CLIENT_ADMIN):
        raise PortalPage(403, "Administrators only", "Only the client's administrators manage its users.")
    return user


ClientUser = Annotated[User, Depends(client_user)]  # a route's user, in the client's scope
ActingUser = Annotated[User, Depends(acting_user)]  # ... who may change something
AdminUser = Annotated[User, Depends(admin_user)]  # ... who administers the client


def action_route(path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A portal form's POST route: an HTML answer, the CSRF check before anything else."""
    return router.post(path, response_class=HTMLResponse, dependencies=[Depends(check_csrf)])


def guarded(
    fn: Callable[[], T], *, missing: type[Exception], busy: type[Exception], logger: logging.Logger, what: str
) -> T:
    """``fn()``, with ``missing`` (no such thing of the client) a 404 page and ``busy`` (a warehouse
    that cannot be used now) a 503 page, logged as ``what``: never a 500."""
    try:
        return fn()
    except missing as exc:
        raise not_found() from exc
    except busy as exc:
        logger.warning("%s: %s", what, str(exc)[:300])
        raise unavailable() from exc


def home_of(user: User) -> str:
    return f"{PREFIX}/clients" if user.role == accounts.OPERATOR else f"{PREFIX}/c/{user.client_id}/"


def audit_view(request: Request, user: User, client_id: str | None, what: str) -> None:
    """A page view, audited before the page is shown (no audit row, no page)."""
    with db(web_context(request)) as s:
        portal_audit.record(s, portal_audit.actor(user.email), portal_audit.VIEW, client_id, what)


# --- per-address throttle (herald/web/throttle.py) ---------------------------------------------


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _too_many(kind: str, address: str, minutes: int) -> PortalPage:
    log.warning("portal refused a %s POST from %s: too many attempts from that address", kind, address)
    return PortalPage(429, "Too many attempts",
                      f"Too many attempts from this address; try again in {minutes} minute{'s' if minutes != 1 else ''}. "
                      "Nothing was changed.")  # fmt: skip


def login_throttle(request: Request) -> None:
    """Sign-in POSTs: an address over its failed-attempt limit gets a 429 page before any lookup."""
    address = _address(request)
    minutes = request.app.state.portal_throttle.blocked(LOGIN, address)
    if minutes is not None:
        raise _too_many(LOGIN, address, minutes)


def forgot_throttle(request: Request) -> None:
    """The forgotten-password POSTs: each counts; over the limit, a 429 page before any lookup."""
    address = _address(request)
    minutes = request.app.state.portal_throttle.hit(FORGOT, address)
    if minutes is not None:
        raise _too_many(FORGOT, address, minutes)


def _failed_sign_in(request: Request) -> None:
    request.app.state.portal_throttle.hit(LOGIN, _address(request))


# --- sign-in ----------------------------------------------------------------------------------

FAILED_TEXT = ("The email or password is wrong, or the account is locked after too many attempts "
               f"(for {int(accounts.LOCKOUT.total_seconds() // 60)} minutes). You can also reset your password.")  # fmt: skip


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def portal_home(request: Request) -> Response:
    found = _lookup(request)
    if found is None or found.stage != accounts.STAGE_FULL:
        return redirect(f"{PREFIX}/login")
    return redirect(home_of(found.user))


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": safe_next(next) or ""})


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(login_throttle), Depends(check_csrf)])
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=accounts.MAX_PASSWORD_LENGTH)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    context = web_context(request)
    with db(context) as s:
        attempt = accounts.check_password(s, email, password)
        if attempt.user is None:
            who = portal_audit.actor(email.strip().lower() if attempt.known else None)
            portal_audit.record(s, who, portal_audit.LOGIN_FAILED, None, portal_audit.masked_login(email),
                                {"factor": "password", "locked": attempt.locked})  # fmt: skip
            if attempt.just_locked:
                portal_audit.record(s, who, portal_audit.LOCKOUT, None, portal_audit.masked_login(email),
                                    {"minutes": accounts.LOCKOUT.total_seconds() / 60})  # fmt: skip
        else:
            old = _session_id(request)
            if old:
                accounts.end_session(s, old)
            session_id = accounts.start_session(s, attempt.user.user_id, accounts.STAGE_PASSWORD)
    if attempt.user is None:
        _failed_sign_in(request)
        return render(request, "login.html", {"error": FAILED_TEXT, "email": email[:320], "next": safe_next(next) or ""},
                      401)  # fmt: skip
    step = "login/2fa" if attempt.user.has_2fa else "2fa/setup"
    target = f"{PREFIX}/{step}" + (f"?next={quote(safe_next(next) or '', safe='')}" if safe_next(next) else "")
    response = redirect(target)
    set_session_cookie(request, response, session_id)
    return response


def _finish_sign_in(request: Request, s: accounts.Session, signed: Signed, next_path: str | None) -> Response:
    accounts.end_session(s, signed.session_id)
    session_id = accounts.start_session(s, signed.user.user_id, accounts.STAGE_FULL)
    response = redirect(safe_next(next_path) or home_of(signed.user))
    set_session_cookie(request, response, session_id)
    return response


@router.get("/login/2fa", response_class=HTMLResponse)
def second_factor_page(
    request: Request, signed: Annotated[Signed, Depends(pending)], next: str | None = None
) -> Response:
    if not signed.user.has_2fa:
        return redirect(f"{PREFIX}/2fa/setup")
    return render(request, "two_factor.html", {"next": safe_next(next) or ""})


@router.post("/login/2fa", response_class=HTMLResponse, dependencies=[Depends(login_throttle), Depends(check_csrf)])
def second_factor(
    request: Request,
    signed: Annotated[Signed, Depends(pending)],
    code: Annotated[str, Form(max_length=64)] = "",
    recovery_code: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    use_recovery = bool(recovery_code.strip()) and not code.strip()
    who = portal_audit.actor(signed.user.email)
    with db(web_context(request)) as s:
        attempt = accounts.check_second_factor(s, signed.user.user_id, recovery_code if use_recovery else code,
                                               recovery=use_recovery)  # fmt: skip
        factor = "recovery_code" if use_recovery else "totp"
        if attempt.user is None:
            portal_audit.record(s, who, portal_audit.LOGIN_FAILED, signed.user.client_id, signed.user.email,
                                {"factor": factor, "locked": attempt.locked})  # fmt: skip
            if attempt.just_locked:
                portal_audit.record(s, who, portal_audit.LOCKOUT, signed.user.client_id, signed.user.email,
                                    {"minutes": accounts.LOCKOUT.total_seconds() / 60})  # fmt: skip
            if attempt.locked:
                accounts.end_session(s, signed.session_id)
        else:
            if use_recovery:
                left = accounts.recovery_codes_left(s, signed.user.user_id)
                portal_audit.record(s, who, portal_audit.RECOVERY_CODE_USED, signed.user.client_id, signed.user.email,
                                    {"codes_left": left})  # fmt: skip
            portal_audit.record(
                s, who, portal_audit.LOGIN, signed.user.client_id, signed.user.email, {"factor": factor}
            )
            return _finish_sign_in(request, s, signed, next)
    _failed_sign_in(request)
    if attempt.locked:
        return render(request, "login.html", {"error": FAILED_TEXT, "next": ""}, 401)
    return render(request, "two_factor.html",
                  {"error": "That code is not right. Enter the 6 digits your app shows now, or a recovery code.",
                   "next": safe_next(next) or ""}, 401)  # fmt: skip


def _enroll_secret(request: Request, signed: Signed) -> tuple[str, bool]:
    """The secret being enrolled: from the signed enrollment cookie (bound to the user), or new."""
    from itsdangerous import BadSignature, TimestampSigner

    signer = TimestampSigner(portal_key(web_context(request)), salt=f"enroll:{signed.user.user_id}")
    raw = request.cookies.get(ENROLL_COOKIE)
    if raw:
        try:
            return signer.unsign(raw, max_age=ENROLL_MAX_AGE).decode(), False
        except BadSignature:
            pass
    return accounts.new_totp_secret(), True


def _enroll_page(request: Request, signed: Signed, secret: str, fresh: bool, error: str | None = None) -> Response:
    from itsdangerous import TimestampSigner

    uri = accounts.provisioning_uri(secret, signed.user.email)
    response = render(request, "enroll.html", {"qr_svg": accounts.qr_svg(uri), "secret": secret, "error": error},
                      400 if error else 200)  # fmt: skip
    if fresh:
        signer = TimestampSigner(portal_key(web_context(request)), salt=f"enroll:{signed.user.user_id}")
        response.set_cookie(ENROLL_COOKIE, signer.sign(secret).decode(), httponly=True, samesite="lax",
                            secure=_secure(request), path=PREFIX, max_age=ENROLL_MAX_AGE)  # fmt: skip
    return response


@router.get("/2fa/setup", response_class=HTMLResponse)
def enroll_page(request: Request, signed: Annotated[Signed, Depends(pending)]) -> Response:
    if signed.user.has_2fa:
        return redirect(f"{PREFIX}/login/2fa")
    secret, fresh = _enroll_secret(request, signed)
    return _enroll_page(request, signed, secret, fresh)


@router.post("/2fa/setup", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
def enroll(
    request: Request, signed: Annotated[Signed, Depends(pending)], code: Annotated[str, Form(max_length=64)] = ""
) -> Response:
    secret, fresh = _enroll_secret(request, signed)
    who = portal_audit.actor(signed.user.email)
    try:
        with db(web_context(request)) as s:
            codes = accounts.enroll_totp(s, signed.user, secret, code)
            portal_audit.record(s, who, portal_audit.TWO_FACTOR_ENROLLED, signed.user.client_id, signed.user.email)
            portal_audit.record(
                s, who, portal_audit.LOGIN, signed.user.client_id, signed.user.email, {"factor": "enroll"}
            )
            finished = _finish_sign_in(request, s, signed, None)
    except AccountError as exc:
        return _enroll_page(request, signed, secret, fresh, str(exc))
    # no signed-in header here: its sign-out form would carry the token of the session just replaced
    response = render(request, "recovery_codes.html", {"codes": codes, "home": finished.headers["location"]})
    response.headers.append("set-cookie", finished.headers["set-cookie"])
    response.delete_cookie(ENROLL_COOKIE, path=PREFIX)
    return response


@router.post("/logout", dependencies=[Depends(check_csrf)])
def logout(request: Request) -> Response:
    session_id = _session_id(request)
    if session_id:
        with db(web_context(request)) as s:
            found = accounts.session_user(s, session_id)
            accounts.end_session(s, session_id)
            if found:
                portal_audit.record(s, portal_audit.actor(found[0].email), portal_audit.LOGOUT, found[0].client_id,
                                    found[0].email)  # fmt: skip
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


# --- forgotten password -----------------------------------------------------------------------

SENT_TEXT = ("If a portal account uses that address, we have sent it a link to choose a new password. "
             f"The link works once, for {int(accounts.RESET_TTL.total_seconds() // 60)} minutes.")  # fmt: skip


@router.get("/forgot", response_class=HTMLResponse)
def forgot_page(request: Request) -> Response:
    return render(request, "forgot.html", {})


def send_reset_email(context: WebContext, user: User, link: str) -> None:
    from herald.providers.base import OutboundMessage
    from herald.providers.factory import providers_from_env

    provider = providers_from_env(context.environ, home=context.settings.home)["email"]
    client = context.deployment.clients.get(user.client_id or "")
    sender = context.environ.get(ENV_EMAIL_FROM) or (client.config.senders.email_from if client else None)
    minutes = int(accounts.RESET_TTL.total_seconds() // 60)
    text = (f"Someone (we hope you) asked to reset the password of your Herald portal account.\n\n"
            f"Choose a new password here (the link works once, for {minutes} minutes):\n{link}\n\n"
            "If you did not ask for this, ignore this email: your password stays as it is.")  # fmt: skip
    provider.send(OutboundMessage(f"portal-reset:{hashlib.sha256(link.encode()).hexdigest()[:32]}", "email",
                                  user.email, sender=sender, subject="Reset your Herald portal password",
                                  text=text))  # fmt: skip


@router.post("/forgot", response_class=HTMLResponse, dependencies=[Depends(forgot_throttle), Depends(check_csrf)])
def forgot(request: Request, email: Annotated[str, Form(max_length=320)] = "") -> Response:
    context = web_context(request)
    with db(context) as s:
        user = accounts.find_user(s, email)
        if user is not None and not user.is_disabled:
            token = accounts.create_reset_token(s, context.links.secret, user)
            link = f"{context.links.public_url}{PREFIX}/reset/{token}"
            try:  # the token is committed only when the email went out
                send_reset_email(context, user, link)
            except Exception as exc:
                log.error("the password-reset email could not be sent (%s)", type(exc).__name__)
                raise unavailable() from exc
            portal_audit.record(s, portal_audit.actor(user.email), portal_audit.RESET_REQUESTED, user.client_id,
                                user.email)  # fmt: skip
        else:
            portal_audit.record(s, portal_audit.UNKNOWN_ACTOR, portal_audit.RESET_REQUESTED, None,
                                portal_audit.masked_login(email), {"known": False})  # fmt: skip
    return render(request, "message.html", {"title": "Check your email", "text": SENT_TEXT})


INVALID_LINK = "This reset link is not valid any more: it was used, it expired, or it was changed. Ask for a new one."


@router.get("/reset/{token}", response_class=HTMLResponse)
def reset_page(request: Request, token: str) -> Response:
    context = web_context(request)
    try:
        with db(context) as s:
            accounts.reset_token_user(s, context.links.secret, token)
    except AccountError:
        return render(request, "message.html", {"title": "This link does not work", "text": INVALID_LINK,
                                                "link": (f"{PREFIX}/forgot", "Ask for a new link")}, 400)  # fmt: skip
    return render(request, "reset.html", {})


@router.post("/reset/{token}", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
def reset(
    request: Request,
    token: str,
    password: Annotated[str, Form(max_length=accounts.MAX_PASSWORD_LENGTH)] = "",
    confirm: Annotated[str, Form(max_length=accounts.MAX_PASSWORD_LENGTH)] = "",
) -> Response:
    context = web_context(request)
    if password != confirm:
        return render(request, "reset.html", {"error": "The two passwords are not the same."}, 400)
    try:
        with db(context) as s:
            accounts.check_password_policy(password)
            user = accounts.reset_password(s, context.links.secret, token, password)
            portal_audit.record(s, portal_audit.actor(user.email), portal_audit.PASSWORD_RESET, user.client_id,
                                user.email)  # fmt: skip
    except AccountError as exc:
        if "reset link" in str(exc):
            return render(request, "message.html", {"title": "This link does not work", "text": INVALID_LINK,
                                                    "link": (f"{PREFIX}/forgot", "Ask for a new link")}, 400)  # fmt: skip
        return render(request, "reset.html", {"error": str(exc)}, 400)
    return render(request, "message.html", {"title": "Password changed",
                                            "text": "Your password is changed. Sign in with it now.",
                                            "link": (f"{PREFIX}/login", "Sign in")})  # fmt: skip


# --- pages of a signed-in user ----------------------------------------------------------------


@router.get("/clients", response_class=HTMLResponse)
def client_picker(request: Request, user: Annotated[User, Depends(signed_in)]) -> Response:
    if user.role != accounts.OPERATOR:
        return redirect(home_of(user))
    audit_view(request, user, None, request.url.path)
    context = web_context(request)
    clients = sorted(((cid, c.config.name) for cid, c in context.deployment.clients.items()), key=lambda c: c[1])
    return render(request, "clients.html", {"clients": clients})


@router.get("/c/{client_id}/", response_class=HTMLResponse)
def dashboard(request: Request, client_id: str, user: Annotated[User, Depends(client_user)]) -> Response:
    audit_view(request, user, client_id, request.url.path)
    settings = web_context(request).settings
    # one DuckDB database instance per process: only the first read, with no snapshot yet, opens
    # the live file, which must not be beside this process's read-write opens (a block's write)
    first = settings.warehouse.engine == "duckdb" and current_snapshot(settings.warehouse) is None
    with _duckdb_lock if first else nullcontext():
        board = read_dashboard(settings, client_id)
    return render(request, "dashboard.html", {"client_id": client_id, "board": board})


@router.get("/c/{client_id}/users", response_class=HTMLResponse)
def users_page(request: Request, client_id: str, user: Annotated[User, Depends(client_user)]) -> Response:
    if user.role not in (accounts.OPERATOR, accounts.CLIENT_ADMIN):
        raise PortalPage(403, "Administrators only", "Only the client's administrators manage its users.")
    audit_view(request, user, client_id, request.url.path)
    with db(web_context(request)) as s:
        users = accounts.list_users(s, client_id)
    return render(request, "users.html", {"client_id": client_id, "users": users})


@router.post("/c/{client_id}/users/{user_id}/disable", dependencies=[Depends(check_csrf)])
def disable(request: Request, client_id: str, user_id: str, user: Annotated[User, Depends(admin_user)]) -> Response:
    with db(web_context(request)) as s:
        target = accounts.get_user(s, user_id)
        if target is None or target.client_id != client_id:
            raise not_found()
        if target.user_id == user.user_id:
            raise PortalPage(400, "Not your own account", "Ask another administrator to disable your account.")
        accounts.disable_user(s, user_id)
        portal_audit.record(s, portal_audit.actor(user.email), portal_audit.USER_DISABLED, client_id, target.email)
    return redirect(f"{PREFIX}/c/{client_id}/users")


# --- installing -------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """The portal's router, its error pages, the vendored static files (htmx, Swagger UI) and
    ``/docs`` served from them (no CDN)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    from herald.web import portal_campaigns, portal_inbox, portal_pages  # noqa: F401  (their routes join this router)

    app.state.portal_throttle = Throttle.from_env(app.state.herald.environ)
    app.include_router(router)
    from herald.web import portal_reports  # the Reports and billing page: its own router

    app.include_router(portal_reports.router)
    app.add_exception_handler(PortalPage, page_handler)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )
