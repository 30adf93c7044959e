"""Phone numbers to E.164 with libphonenumber, fast enough for million-row packets.

libphonenumber costs ~50 µs a number. Packets repeat number *shapes* far more than numbers:
a North American number's validity depends only on its first seven national digits (area
code, exchange and one more digit — the metadata's patterns end in a free ``\\d{3}``/``\\d{4}``),
so the verdict for one number is reused for every number sharing that prefix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

NANP_REGIONS = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
# (+1 / 1) (NXX) NXX-XXXX in the usual punctuation, nothing else on the line
_NANP_SHAPE = re.compile(r"^\s*(?:\+?1[\s.\-]*)?\(?([2-9]\d{2})\)?[\s.\-]*([2-9]\d{2})[\s.\-]*(\d{4})\s*$")


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
