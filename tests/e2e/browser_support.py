"""What the browser tests share (not a test module, so not collected): Debian's Chromium driven by
Playwright (skipped when missing, a failure under CI), screenshots at desktop and phone widths,
a form submit that waits for the next page, and the portal's sign-in with a 2FA code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyotp
import pytest

CHROMIUM = Path("/usr/bin/chromium")
WIDTHS = ((1280, 900), (390, 844))  # desktop, phone
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]  # fmt: skip


def require_chromium() -> Any:
    """Playwright's ``sync_playwright``; the test is skipped when Chromium is missing (failed under CI)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run `make browsers` (Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + " (under CI the browser test must run)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    return sync_playwright


def launch(playwright: Any) -> Any:
    """A headless Chromium quiet on the network."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)


def shoot(page: Any, shots: Path, name: str) -> None:
    """``<shots>/<name>-<width>.png`` at each width; at the phone's nothing may be wider than the screen."""
    shots.mkdir(parents=True, exist_ok=True)
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
        if width == 390:  # nothing wider than the phone's screen
            assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, name
    page.set_viewport_size({"width": 1280, "height": 900})


def submit(page: Any, button: str, exact: bool = False) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=button, exact=exact).click()


def sign_in(page: Any, email: str, password: str, secret: str) -> None:
    """The sign-in page (already open) with a password, then the 2FA page with the TOTP code."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    submit(page, "Continue")
    page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    submit(page, "Sign in")
