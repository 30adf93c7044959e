"""Pure billing rules: prices, the alert threshold and key, pricing off."""

from __future__ import annotations

from decimal import Decimal

import pytest

from herald.billing.alerts import alert_key, is_low, threshold
from herald.billing.credits import Balance, delivery_pricing, price, show
from herald.config.models import HeraldConfig, Pricing


@pytest.mark.parametrize(
    ("channel", "segments", "pricing", "expected"),
    [
        ("sms", 1, Pricing(), "1"),
        ("sms", 3, Pricing(), "3"),
        ("sms", None, Pricing(), "1"),  # unknown segment count: one
        ("sms", 2, Pricing(sms_segment=0.75), "1.5"),
        ("email", None, Pricing(), "0.25"),
        ("email", 4, Pricing(email=0.1), "0.1"),  # an email costs per message, segments do not matter
    ],
)
def test_price(channel: str, segments: int | None, pricing: Pricing, expected: str) -> None:
    assert show(price(channel, segments, pricing)) == expected


def balance(amount: str, last_purchase: str | None) -> Balance:
    last = Decimal(last_purchase) if last_purchase else None
    return Balance("acme", Decimal(amount), Decimal(0), Decimal(0), "purchase:1" if last else None, last, None)


@pytest.mark.parametrize(
    ("left", "last_purchase", "pct", "limit", "low"),
    [
        ("199", "1000", 20, "200", True),
        ("200", "1000", 20, "200", False),  # at the threshold is not below it
        ("5", None, 20, None, False),  # never bought: nothing to be low against
        ("0", "10", 0, "0", False),  # 0 %: never alerted
    ],
)
def test_threshold_is_a_share_of_the_last_purchase(left: str, last_purchase: str | None, pct: int, limit: str | None,
                                                   low: bool) -> None:  # fmt: skip
    found = threshold(balance(left, last_purchase), pct)
    assert (show(found) if found is not None else None, is_low(balance(left, last_purchase), pct)) == (limit, low)


def test_alert_keys_are_deterministic_per_crossing() -> None:
    assert alert_key("acme", "purchase:1") == alert_key("acme", "purchase:1")
    assert alert_key("acme", "purchase:1") != alert_key("acme", "purchase:2")


def test_billing_off_meters_nothing() -> None:
    assert delivery_pricing(HeraldConfig()) == Pricing()
    assert delivery_pricing(HeraldConfig(billing_enabled=False)) is None
    assert HeraldConfig(pricing={"sms_segment": 2, "email": 0.5}).pricing == Pricing(sms_segment=2.0, email=0.5)
