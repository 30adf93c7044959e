"""herald.contacts.phones: raw phone text → E.164 with the same verdict libphonenumber gives."""

from __future__ import annotations

import random
import re

import phonenumbers
import pytest

from herald.contacts.phones import PhoneNormalizer, mask_email, mask_phone, normalize_phones, normalize_series


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(512) 555-0142", ("+15125550142", True)),
        ("512.555.0142", ("+15125550142", True)),
        ("512-555-0142", ("+15125550142", True)),
        ("+1 512 555 0142", ("+15125550142", True)),
        ("+1 (512) 555-0142", ("+15125550142", True)),
        ("1-512-555-0142", ("+15125550142", True)),
        ("15125550142", ("+15125550142", True)),
        ("5125550142", ("+15125550142", True)),
        ("  (512)555-0142  ", ("+15125550142", True)),
        ("+1 604 555 0199", ("+16045550199", True)),  # Canada shares +1
        ("+44 20 7946 0958", ("+442079460958", True)),
        ("+33 1 23 45 67 89", ("+33123456789", True)),
        ("555-12", (None, False)),
        ("123-456-7890", (None, False)),  # area codes never start with 1
        ("(512) 155-0142", (None, False)),  # nor do exchanges
        ("+1 999 555 0142", (None, False)),  # 999 is not an area code
        ("512-555-01420", (None, False)),
        ("+44 20 7946", (None, False)),
        ("n/a", (None, False)),
        ("unknown", (None, False)),
        ("", (None, False)),
        ("   ", (None, False)),
    ],
)
def test_us_normalizer(raw: str, expected: tuple[str | None, bool]) -> None:
    assert PhoneNormalizer("US").normalize(raw) == expected


@pytest.mark.parametrize(
    ("region", "raw", "expected"),
    [
        ("GB", "020 7946 0958", ("+442079460958", True)),
        ("GB", "+1 512 555 0142", ("+15125550142", True)),
        ("CA", "(604) 555-0199", ("+16045550199", True)),
        ("US", "020 7946 0958", (None, False)),  # a national UK number means nothing in the US
    ],
)
def test_the_default_region_decides_national_numbers(region: str, raw: str, expected: tuple[str | None, bool]) -> None:
    assert PhoneNormalizer(region).normalize(raw) == expected


def generated_nanp_numbers(count: int, seed: int = 20240611) -> list[str]:
    """Numbers that share 7-digit prefixes, so the cache answers most of them."""
    rng = random.Random(seed)
    prefixes = [f"{rng.randint(200, 999)}{rng.randint(200, 999)}{rng.randint(0, 9)}" for _ in range(count // 4)]
    prefixes += ["5125550", "5125551", "2125550", "8005550", "9005550", "6045550", "2025550", "3115550"]
    # where the 7th digit decides (Barbados 246-521/522, Jamaica 876-606): a shorter key would be wrong
    prefixes += [f"24652{d}" for d in range(10, 30)] + ["8766060", "8766061", "8766065"]
    return [f"{rng.choice(prefixes)}{rng.randint(0, 999):03d}" for _ in range(count)]


def test_the_prefix_cache_agrees_with_libphonenumber() -> None:
    numbers = generated_nanp_numbers(400)
    normalizer = PhoneNormalizer("US")
    shapes = ["{a}{e}{s}", "({a}) {e}-{s}", "+1 {a}.{e}.{s}", "1-{a}-{e}-{s}"]

    verdicts = {}
    for i, national in enumerate(numbers):
        a, e, s = national[:3], national[3:6], national[6:]
        verdicts[national] = normalizer.normalize(shapes[i % len(shapes)].format(a=a, e=e, s=s))

    expected = {
        national: (
            ("+1" + national, True)
            if phonenumbers.is_valid_number(phonenumbers.parse("+1" + national))
            else (None, False)
        )
        for national in numbers
    }
    assert verdicts == expected
    assert len(normalizer._prefix_valid) < len(set(numbers))  # the cache did answer some
    assert {v for _, v in verdicts.values()} == {True, False}  # both verdicts were exercised


def test_normalize_phones_returns_each_distinct_value_once() -> None:
    raw = ["(512) 555-0142", "512.555.0142", "(512) 555-0142", "n/a"]

    assert normalize_phones(raw, "US") == {
        "(512) 555-0142": ("+15125550142", True),
        "512.555.0142": ("+15125550142", True),
        "n/a": (None, False),
    }


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+15125550142", "+1•••••••142"),
        ("5125550142", "•••••••142"),
        ("(512) 555-0142", "•••••••••••142"),
        ("+442079460958", "+4••••••••958"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_phone(value: str | None, masked: str) -> None:
    assert mask_phone(value) == masked


@pytest.mark.parametrize(
    "value", ["+15125550142", "5125550142", "+442079460958", "(512) 555-0142", "+1 512 555 0142", "12"]
)
def test_mask_phone_shows_no_digit_but_the_last_three(value: str) -> None:
    masked = mask_phone(value)
    # a leading "+" keeps the country code's first digit (the "+1" of "+1•••142"), nothing more
    shown = re.sub(r"\D", "", masked[2:] if masked.startswith("+") else masked)

    assert shown == re.sub(r"\D", "", value)[-3:]


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("jane.doe@example.com", "j•••@example.com"),
        ("j@example.com", "j•••@example.com"),
        ("Bob.Smith+tag@mail.example", "B•••@mail.example"),
        ("not-an-email", "n•••"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_email_keeps_only_the_first_letter_of_the_local_part(value: str | None, masked: str) -> None:
    assert mask_email(value) == masked


@pytest.mark.parametrize("region", ["US", "CA", "GB"])
def test_normalize_series_gives_the_normalizers_verdicts(region: str) -> None:
    """The column-wise path (shapes matched by polars, libphonenumber once per prefix) agrees with
    the normalizer value by value, on every shape it takes and every one it leaves to the normalizer."""
    import polars as pl

    rng = random.Random(7)
    shapes = ["({a}) {b}-{c}", "{a}.{b}.{c}", "{a}-{b}-{c}", "+1 {a} {b} {c}", "1-{a}-{b}-{c}", "{a}{b}{c}",
              "+1({a}){b}{c}", "  {a} {b} {c} ", "{a}/{b}/{c}", "+44 {a} {b}", "{a}\u00a0{b} {c}", "{a}-{b}-{c}0",
              "ext {a}", "{a}-{b}"]  # fmt: skip
    values = [
        shape.format(a=f"{rng.randint(100, 999)}", b=f"{rng.randint(100, 999)}", c=f"{rng.randint(0, 9999):04d}")
        for shape in shapes
        for _ in range(40)
    ] + ["", "n/a", "١٢٣", "(512) 555-0142", "(512) 555-0142"]
    normalizer = PhoneNormalizer(region)

    got = {r[0]: (r[1], r[2]) for r in normalize_series(pl.Series(values), region).iter_rows()}

    assert got == {v: normalizer.normalize(v) for v in values}
