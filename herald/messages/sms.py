"""SMS encoding and segment counting (GSM 03.38 / 3GPP TS 23.038).

A body that uses only the GSM 7-bit default alphabet (plus its extension table, whose
characters cost an escape septet and so count 2) is sent as GSM-7: 160 septets in a single
message, 153 per part once concatenated (the user data header takes the rest). Anything else
goes as UCS-2: 70 UTF-16 code units single, 67 per part; characters outside the BMP (most
emoji) are a surrogate pair and count 2.

Parts never split an escape sequence or a surrogate pair, so a part may be one unit short of
the limit; counts here follow that, as carriers and Twilio do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 default alphabet, minus 0x1B (the escape to the extension table).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs two septets (escape + character).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE_LIMIT = 160
GSM7_PART_LIMIT = 153
UCS2_SINGLE_LIMIT = 70
UCS2_PART_LIMIT = 67


@dataclass(frozen=True)
class SmsInfo:
    encoding: Encoding
    segments: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    characters: int  # Unicode code points


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 7-bit basic set or its extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def encoding_for(text: str) -> Encoding:
    return GSM7 if is_gsm7(text) else UCS2


def _unit_costs(text: str, encoding: Encoding) -> list[int]:
    if encoding == GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _count_parts(costs: list[int], single_limit: int, part_limit: int) -> int:
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single_limit:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part_limit:  # never split an escape sequence / surrogate pair
            parts, used = parts + 1, 0
        used += cost
    return parts


def sms_info(text: str) -> SmsInfo:
    """Encoding, segment count, encoded units and characters of an SMS body (empty → 0 segments)."""
    encoding = encoding_for(text)
    costs = _unit_costs(text, encoding)
    if encoding == GSM7:
        segments = _count_parts(costs, GSM7_SINGLE_LIMIT, GSM7_PART_LIMIT)
    else:
        segments = _count_parts(costs, UCS2_SINGLE_LIMIT, UCS2_PART_LIMIT)
    return SmsInfo(encoding=encoding, segments=segments, units=sum(costs), characters=len(text))


def segment_count(text: str) -> int:
    return sms_info(text).segments
