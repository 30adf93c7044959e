"""A/B statistics against values computed independently with scipy: the Wilson interval from
``binomtest(...).proportion_ci(method='wilson')``, the pooled z-test from the formula with
``norm.sf`` and from a 2×2 chi-square test without continuity correction (chi² = z²)."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest, chi2_contingency, norm

from herald.analytics.ab_tests import (
    CONTROL,
    LOSER,
    NO_DIFFERENCE,
    NOT_ENOUGH_DATA,
    WINNER,
    ArmCounts,
    compare_arms,
    two_proportion_test,
    wilson_interval,
)
from herald.config.campaigns import AbTest, CampaignConfig


def scipy_z_test(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float]:
    pooled = (s1 + s2) / (n1 + n2)
    z = (s1 / n1 - s2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return z, 2 * norm.sf(abs(z))


@pytest.mark.parametrize(
    ("successes", "trials", "confidence"),
    [(0, 10, 0.95), (3, 10, 0.95), (10, 10, 0.95), (45, 500, 0.95), (120, 400, 0.99), (1, 2, 0.9), (7, 1000, 0.95)],
)
def test_wilson_interval_matches_scipy(successes: int, trials: int, confidence: float) -> None:
    expected = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    low, high = wilson_interval(successes, trials, confidence)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_interval_formula_written_out() -> None:
    # 30 of 200 at 95%: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    z, n, p = norm.ppf(0.975), 200, 0.15
    centre, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson_interval(30, 200)
    assert (low, high) == pytest.approx(((centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)))


@pytest.mark.parametrize(
    ("s1", "n1", "s2", "n2"),
    [
        (60, 500, 40, 500),
        (40, 500, 60, 500),
        (12, 130, 11, 140),
        (300, 1000, 250, 1100),
        (5, 100, 0, 100),
        (1, 7, 3, 9),
    ],
)
def test_two_proportion_test_matches_scipy(s1: int, n1: int, s2: int, n2: int) -> None:
    z_expected, p_expected = scipy_z_test(s1, n1, s2, n2)
    z, p = two_proportion_test(s1, n1, s2, n2)
    assert z == pytest.approx(z_expected, rel=1e-12)
    assert p == pytest.approx(p_expected, rel=1e-9)
    chi2, p_chi2, _, _ = chi2_contingency([[s1, n1 - s1], [s2, n2 - s2]], correction=False)
    assert z * z == pytest.approx(chi2, rel=1e-9)
    assert p == pytest.approx(p_chi2, rel=1e-9)


def test_two_proportion_test_keeps_tiny_p_values() -> None:
    z, p = two_proportion_test(900, 1000, 100, 1000)
    assert p == pytest.approx(2 * norm.sf(abs(z)), rel=1e-9)
    assert 0 < p < 1e-200


def test_two_proportion_test_with_no_variation_and_bad_input() -> None:
    assert two_proportion_test(0, 50, 0, 80) == (0.0, 1.0)
    assert two_proportion_test(50, 50, 80, 80) == (0.0, 1.0)
    with pytest.raises(ValueError, match="trials must be positive"):
        two_proportion_test(0, 0, 1, 10)
    with pytest.raises(ValueError, match="successes must be between 0 and trials"):
        wilson_interval(11, 10)


def by_variant(results: list) -> dict:
    return {(r.step, r.variant): r for r in results}


def test_clear_winner() -> None:
    rows = [
        ArmCounts("welcome", "a", sent=1000, delivered=990, replied=50),
        ArmCounts("welcome", "b", sent=1000, delivered=985, replied=110),
    ]
    results = by_variant(compare_arms(rows, control=None, significance=0.05, min_sample=100))
    a, b = results[("welcome", "a")], results[("welcome", "b")]
    z, p = scipy_z_test(110, 1000, 50, 1000)
    assert (a.is_control, a.verdict, a.z, a.p_value) == (True, CONTROL, None, None)
    assert (b.is_control, b.verdict) == (False, WINNER)
    assert (b.z, b.p_value) == pytest.approx((z, p))
    assert a.winner == b.winner == "b"
    assert (a.rate, b.rate) == (0.05, 0.11)
    ci = binomtest(110, 1000).proportion_ci(method="wilson")
    assert (b.ci_low, b.ci_high) == pytest.approx((ci.low, ci.high))


def test_control_named_and_significantly_better_is_the_winner() -> None:
    rows = [ArmCounts("s", "a", sent=800, replied=20), ArmCounts("s", "b", sent=800, replied=70)]
    results = by_variant(compare_arms(rows, control="b", significance=0.05, min_sample=100))
    assert results[("s", "b")].verdict == CONTROL
    assert results[("s", "a")].verdict == LOSER
    assert results[("s", "a")].z < 0
    assert results[("s", "a")].winner == "b"


def test_not_enough_data_in_either_arm() -> None:
    # a big difference, but the challenger has 99 sent with a minimum of 100
    rows = [ArmCounts("s", "a", sent=500, replied=10), ArmCounts("s", "b", sent=99, replied=40)]
    results = by_variant(compare_arms(rows, control=None, significance=0.05, min_sample=100))
    assert results[("s", "b")].verdict == NOT_ENOUGH_DATA
    assert (results[("s", "b")].z, results[("s", "b")].p_value, results[("s", "b")].winner) == (None, None, None)
    assert results[("s", "b")].rate == pytest.approx(40 / 99)  # still reported, with its interval
    # the control below the minimum: no challenger is judged
    rows = [ArmCounts("s", "a", sent=20, replied=1), ArmCounts("s", "b", sent=5000, replied=900)]
    results = by_variant(compare_arms(rows, control=None, significance=0.05, min_sample=100))
    assert results[("s", "b")].verdict == NOT_ENOUGH_DATA
    assert results[("s", "a")].verdict == CONTROL
    # nothing sent at all: no rate and no interval
    rows = [ArmCounts("s", "a", sent=0), ArmCounts("s", "b", sent=0)]
    assert [(r.verdict, r.rate, r.ci_low) for r in compare_arms(rows, None, 0.05, 100)] == [
        (CONTROL, None, None),
        (NOT_ENOUGH_DATA, None, None),
    ]


def test_no_significant_difference_at_the_level() -> None:
    rows = [ArmCounts("s", "a", sent=500, replied=50), ArmCounts("s", "b", sent=500, replied=66)]
    _z, p = scipy_z_test(66, 500, 50, 500)
    assert 0.05 < p < 0.2  # significant at neither level below
    results = by_variant(compare_arms(rows, control="a", significance=0.05, min_sample=100))
    assert results[("s", "b")].verdict == NO_DIFFERENCE
    assert results[("s", "b")].winner is None
    assert results[("s", "b")].p_value == pytest.approx(p)
    # the same data at a looser level: a winner
    assert by_variant(compare_arms(rows, "a", significance=0.2, min_sample=100))[("s", "b")].verdict == WINNER


def test_metric_and_steps_are_judged_separately() -> None:
    rows = [
        ArmCounts("one", "a", sent=400, delivered=400, replied=10, converted=10),
        ArmCounts("one", "b", sent=400, delivered=400, replied=10, converted=60),
        ArmCounts("two", "x", sent=400, delivered=390, replied=10, converted=0),
        ArmCounts("two", "y", sent=400, delivered=300, replied=10, converted=0),
    ]
    results = by_variant(compare_arms(rows, control=None, significance=0.05, min_sample=100, metric="converted"))
    assert results[("one", "b")].verdict == WINNER
    assert results[("one", "b")].winner == "b"
    assert results[("two", "y")].verdict == NO_DIFFERENCE  # 0 of 400 each
    results = by_variant(compare_arms(rows, control=None, significance=0.05, min_sample=100, metric="delivered"))
    assert results[("two", "y")].verdict == LOSER
    assert results[("two", "x")].winner == "x"  # the control beat its only challenger
    assert results[("one", "b")].verdict == NO_DIFFERENCE


def test_three_arms_split_the_level() -> None:
    # b beats a with p between 0.025 and 0.05: significant alone, not with two challengers
    rows = [ArmCounts("s", "a", sent=1000, replied=100), ArmCounts("s", "b", sent=1000, replied=128)]
    _, p = scipy_z_test(128, 1000, 100, 1000)
    assert 0.025 < p < 0.05
    assert by_variant(compare_arms(rows, None, 0.05, 100))[("s", "b")].verdict == WINNER
    rows.append(ArmCounts("s", "c", sent=1000, replied=101))
    results = by_variant(compare_arms(rows, None, 0.05, 100))
    assert results[("s", "b")].verdict == NO_DIFFERENCE
    assert results[("s", "b")].winner is None
    # with a clear winner among three, the best significant challenger wins
    rows = [
        ArmCounts("s", "a", sent=1000, replied=50),
        ArmCounts("s", "b", sent=1000, replied=120),
        ArmCounts("s", "c", sent=1000, replied=150),
    ]
    results = by_variant(compare_arms(rows, None, 0.05, 100))
    assert results[("s", "b")].verdict == results[("s", "c")].verdict == WINNER
    assert {r.winner for r in results.values()} == {"c"}


def test_ab_test_config_defaults_and_control_check() -> None:
    base = {
        "name": "nurture",
        "message_type": "lead_nurture",
        "audience": "admitted",
        "trigger": {"type": "segment_entry"},
        "steps": [
            {
                "name": "welcome",
                "channel": "sms",
                "variants": [{"name": "short", "template": "a.sms.j2"}, {"name": "long", "template": "b.sms.j2"}],
            },
            {"name": "later", "channel": "sms", "delay": "2d", "variants": [{"name": "only", "template": "c.sms.j2"}]},
        ],
    }
    campaign = CampaignConfig.model_validate(base)
    assert campaign.ab_test == AbTest(
        control=None, significance=0.05, min_sample=100, metric="replied", apply_winner=False
    )
    assert campaign.ab_test.control_for(campaign.steps[0]) == "short"
    named = CampaignConfig.model_validate(
        {**base, "ab_test": {"control": "long", "metric": "converted", "apply_winner": True}}
    )
    assert named.ab_test.control_for(named.steps[0]) == "long"
    assert named.ab_test.control_for(named.steps[1]) == "only"  # a one-variant step is no test
    with pytest.raises(ValueError, match=r"step 'welcome' has no variant 'medium' \(variants: short, long\)"):
        CampaignConfig.model_validate({**base, "ab_test": {"control": "medium"}})
    with pytest.raises(ValueError, match="metric"):
        CampaignConfig.model_validate({**base, "ab_test": {"metric": "bounced"}})
