"""Phone numbers to E.164 with libphonenumber, fast enough for million-row packets.

libphonenumber costs ~50 µs a number. Packets repeat number *shapes* far more than numbers:
a North American number's validity depends only on its first seven national digits (area
code, exchange and one more digit — the metadata's patterns end in a free ``\\d{3}``/``\\d{4}``),
so the verdict for one number is reused for every number sharing that prefix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import phonenumbers

if TYPE_CHECKING:
    import polars as pl

NANP_REGIONS = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
# (+1 / 1) (NXX) NXX-XXXX in the usual punctuation, nothing else on the line
_NANP_SHAPE = re.compile(r"^\s*(?:\+?1[\s.\-]*)?\(?([2-9]\d{2})\)?[\s.\-]*([2-9]\d{2})[\s.\-]*(\d{4})\s*$")
# The same shape for text made only of digits, spaces and ( ) + . - : on those characters
# ``\s`` is the space and ``\d`` the ASCII digits, so both expressions match alike.
_NANP_PLAIN = r"^[0-9 ()+.\-]*$"
_NANP_SHAPE_PLAIN = r"^ *(?:\+?1[ .\-]*)?\(?([2-9][0-9]{2})\)?[ .\-]*([2-9][0-9]{2})[ .\-]*([0-9]{4}) *$"


class PhoneNormalizer:
    """Normalizes raw phone text for one default region, caching verdicts."""

    def __init__(self, default_region: str):
        self.region = default_region
        self._prefix_valid: dict[str, bool] = {}

    def normalize(self, raw: str) -> tuple[str | None, bool]:
        """``(e164, is_valid)``; e164 is None unless the number is valid."""
        text = raw.strip()
        if not text:
            return None, False
        if self.region in NANP_REGIONS:
            match = _NANP_SHAPE.match(text)
            if match:
                national = "".join(match.groups())
                prefix = national[:7]
                valid = self._prefix_valid.get(prefix)
                if valid is None:
                    valid = phonenumbers.is_valid_number(phonenumbers.parse("+1" + national))
                    self._prefix_valid[prefix] = valid
                return ("+1" + national if valid else None), valid
        return self._slow(text)

    def _slow(self, text: str) -> tuple[str | None, bool]:
        try:
            number = phonenumbers.parse(text, self.region)
        except phonenumbers.NumberParseException:
            return None, False
        if not phonenumbers.is_valid_number(number):
            return None, False
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), True


def normalize_phones(raw_values: Iterable[str], default_region: str) -> dict[str, tuple[str | None, bool]]:
    """Each distinct raw value → ``(e164, is_valid)``."""
    normalizer = PhoneNormalizer(default_region)
    return {raw: normalizer.normalize(raw) for raw in set(raw_values)}


def normalize_series(raw_values: pl.Series, default_region: str) -> pl.DataFrame:
    """``PhoneNormalizer.normalize`` of each distinct value, on a whole column: the North American
    numbers of the usual shapes get libphonenumber's verdict once per seven-digit prefix (as the
    normalizer caches it); every other value goes through the normalizer itself.
    Columns ``raw_value``, ``phone_e164``, ``is_valid``."""
    import polars as pl

    normalizer = PhoneNormalizer(default_region)
    schema = {"raw_value": pl.String, "phone_e164": pl.String, "is_valid": pl.Boolean}
    values = pl.DataFrame({"raw_value": raw_values.unique()}, schema={"raw_value": pl.String})
    plain = pl.lit(False)
    if default_region in NANP_REGIONS:
        plain = pl.col("raw_value").str.contains(_NANP_PLAIN) & pl.col("raw_value").str.contains(_NANP_SHAPE_PLAIN)
    values = values.with_columns(plain=plain)
    shaped = (
        values.filter(pl.col("plain"))
        .select(
            "raw_value",
            # the shape matched: its digits are the national number's ten, after a country code 1
            national=pl.col("raw_value").str.replace_all(r"[^0-9]", "").str.slice(-10),
        )
        .with_columns(prefix=pl.col("national").str.slice(0, 7))
    )
    prefixes = shaped.group_by("prefix").agg(pl.col("national").first())
    verdicts = pl.DataFrame(
        {
            "prefix": prefixes["prefix"],
            "valid": [normalizer.normalize(n)[1] for n in prefixes["national"]],
        },
        schema={"prefix": pl.String, "valid": pl.Boolean},
    )
    fast = shaped.join(verdicts, on="prefix", how="left").select(
        "raw_value",
        phone_e164=pl.when(pl.col("valid")).then(pl.concat_str([pl.lit("+1"), pl.col("national")])),
        is_valid=pl.col("valid"),
    )
    rest = values.filter(~pl.col("plain"))["raw_value"].to_list()
    slow = pl.DataFrame(
        [(raw, *normalizer.normalize(raw)) for raw in rest],
        schema=schema,
        orient="row",
    )
    return pl.concat([fast.cast(schema), slow], how="vertical")  # type: ignore[arg-type]


def mask_phone(value: str | None) -> str:
    """``+15125550142`` → ``+1•••••••142``: enough to recognise, not to dial."""
    if not value:
        return ""
    keep = value[-3:]
    head = value[:2] if value.startswith("+") else ""
    return head + "•" * max(len(value) - len(head) - 3, 3) + keep


def mask_email(value: str | None) -> str:
    """``jane.doe@example.com`` → ``j•••@example.com``."""
    if not value:
        return ""
    local, _, domain = value.partition("@")
    return (local[:1] + "•••") + ("@" + domain if domain else "")
