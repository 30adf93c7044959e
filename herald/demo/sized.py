"""Packets of an exact size for tests and benchmarks: ``rows`` clean rows (1,000 or 1,000,000)
plus ``bad_rows`` ragged ones at spread-out, recorded lines, generated column by column and chunk
by chunk, so a million rows never exist as a list of dicts."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta

from herald.config.models import Deployment, FieldColumn, LoadMap
from herald.demo.csv_files import encode_csv
from herald.demo.model import DEFAULT_REFERENCE_DATE, SamplePacket
from herald.demo.profiles import EMAIL_DOMAINS, PHONE_STYLES, STAGES, Profile, profile_for
from herald.demo.values import Values, ascii_name, past_moment

SIZED_CHUNK_ROWS = 20_000


_PRIMES = (101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179, 181, 191, 193, 197)
_FIRST_P, _LAST_P, _DOMAIN_P = 211, 307, 5

Source = Callable[[int, int], list[str]]


def _cycle(pool: Sequence[str]) -> Source:
    size = len(pool)

    def take(start: int, stop: int) -> list[str]:
        offset = start % size
        repeated = list(pool) * (math.ceil((stop - start + offset) / size) + 1)
        return repeated[offset : offset + stop - start]

    return take


def _spread(rows: int, count: int) -> list[int]:
    """``count`` distinct row indexes spread evenly over ``rows``."""
    return [((2 * j + 1) * rows) // (2 * count) for j in range(count)]


def _sized_sources(load_map: LoadMap, prof: Profile, rng: random.Random, today: date) -> list[Source]:
    values = Values(rng, prof, today, load_map.packet_type)
    funnel = load_map.entity == "funnel_events"
    per_person = len(STAGES) if funnel else 1
    firsts = [rng.choice(prof.first_names) for _ in range(_FIRST_P)]
    lasts = [rng.choice(prof.last_names) for _ in range(_LAST_P)]
    ascii_firsts, ascii_lasts = [ascii_name(n) or "x" for n in firsts], [ascii_name(n) or "x" for n in lasts]
    digits = max(prof.id_digits + 1, 7)  # one width for every size, so funnel events and leads ids match
    id_format = prof.id_prefix.replace("%", "%%") + f"%0{digits}d"
    # phones: a bijection row → (area, exchange, line), scrambled so neighbours differ
    areas = [a for a, _ in prof.area_codes]
    exchanges = [str(e) for e in range(201, 1000) if e % 100 != 11 and e != 555]
    space = len(areas) * len(exchanges) * 10_000
    golden = int(space * 0.6180339887)  # a multiplier near space/φ scatters consecutive rows widely
    step = next(m for m in range(golden, golden + space) if math.gcd(m, space) == 1)
    shift = rng.randrange(space)
    styles = [rng.choice(prof.phone_styles) for _ in range(7)]

    def people(start: int, stop: int) -> range | map:
        return range(start, stop) if per_person == 1 else map(per_person.__rfloordiv__, range(start, stop))

    def external_id(start: int, stop: int) -> list[str]:
        return [id_format % (p + 1) for p in people(start, stop)]

    def first_name(start: int, stop: int) -> list[str]:
        return [firsts[p % _FIRST_P] for p in people(start, stop)]

    def last_name(start: int, stop: int) -> list[str]:
        return [lasts[p % _LAST_P] for p in people(start, stop)]

    def email(start: int, stop: int) -> list[str]:
        return [
            f"{ascii_firsts[p % _FIRST_P]}.{ascii_lasts[p % _LAST_P]}{p + 1}@{EMAIL_DOMAINS[p % _DOMAIN_P]}"
            for p in people(start, stop)
        ]

    templates = [PHONE_STYLES[s].replace("{a}", "%s").replace("{e}", "%s").replace("{l}", "%04d") for s in styles]
    n_exchanges = len(exchanges)

    def phone(start: int, stop: int) -> list[str]:
        out = []
        for p in people(start, stop):
            n, line = divmod((p * step + shift) % space, 10_000)
            area, exchange = divmod(n, n_exchanges)
            out.append(templates[p % 7] % (areas[area], exchanges[exchange], line))
        return out

    stage_pairs = [("" if k == 0 else STAGES[k - 1], STAGES[k]) for k in range(len(STAGES))]
    gaps = [timedelta(0)] + [timedelta(days=rng.randint(3, 20), seconds=rng.randrange(86_400)) for _ in STAGES[1:]]
    lead_time = sum(gaps, timedelta())  # every stage change stays before ``today``
    moments = [past_moment(rng, today, 150) - lead_time for _ in range(_PRIMES[-1])]
    stamped = [
        [(moment + sum(gaps[: k + 1], timedelta())).isoformat(sep=" ", timespec="seconds") for k in range(len(STAGES))]
        for moment in moments
    ]

    def from_stage(start: int, stop: int) -> list[str]:
        return [stage_pairs[i % per_person][0] for i in range(start, stop)]

    def to_stage(start: int, stop: int) -> list[str]:
        return [stage_pairs[i % per_person][1] for i in range(start, stop)]

    def funnel_type(start: int, stop: int) -> list[str]:
        return ["service-delivery" if p % 7 == 6 else "sales" for p in people(start, stop)]

    def occurred_at(start: int, stop: int) -> list[str]:
        size = len(stamped)
        return [stamped[(i // per_person) % size][i % per_person] for i in range(start, stop)]

    by_field: dict[str, Source] = {
        "external_id": external_id,
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "phone": phone,
    }
    if funnel:
        by_field.update(from_stage=from_stage, to_stage=to_stage, funnel_type=funnel_type, occurred_at=occurred_at)
    sources: list[Source] = []
    for n, target in enumerate(load_map.columns.values()):
        if isinstance(target, FieldColumn) and target.field in by_field:
            sources.append(by_field[target.field])
        else:
            prime = _PRIMES[n % len(_PRIMES)]
            sources.append(_cycle([values.column(target) for _ in range(prime)]))
    return sources


def sized_packet(
    deployment: Deployment,
    client_id: str,
    packet_type: str,
    rows: int,
    bad_rows: int = 0,
    seed: int = 1,
    *,
    today: date = DEFAULT_REFERENCE_DATE,
) -> SamplePacket:
    """Exactly ``rows`` data rows for one load map: all valid except ``bad_rows`` ragged ones.

    Ids, emails and phones are unique per person (per row; per lead of four stage events for a
    ``funnel_events`` map, whose ids are those of a sized contacts packet of the same client:
    events 1..4N follow leads 1..N), every required field is filled, and the ragged rows (one extra field)
    sit at evenly spread positions recorded in ``bad_lines``. Built chunk by chunk, so a million
    rows stay fast and never exist as a list of dicts.
    """
    load_map = deployment.load_map(client_id, packet_type)
    if load_map is None:
        raise KeyError(f"no load map {packet_type!r} for client {client_id!r}")
    if rows < 0 or not 0 <= bad_rows <= rows:
        raise ValueError(f"need 0 <= bad_rows <= rows, got rows={rows}, bad_rows={bad_rows}")
    prof = profile_for(client_id, packet_type)
    rng = random.Random(f"{seed}:{client_id}:{packet_type}:sized")
    sources = _sized_sources(load_map, prof, rng, today)
    bad_at = _spread(rows, bad_rows) if bad_rows else []
    width = len(load_map.columns)
    reason = f"ragged row: {width + 1} fields but the header has {width} (a stray trailing value)"

    def chunks() -> Iterable[list[tuple[str, ...]]]:
        pending = iter(bad_at)
        next_bad = next(pending, None)
        for start in range(0, rows, SIZED_CHUNK_ROWS):
            stop = min(rows, start + SIZED_CHUNK_ROWS)
            chunk = list(zip(*(source(start, stop) for source in sources), strict=False))
            while next_bad is not None and next_bad < stop:
                chunk[next_bad - start] += ("EXTRA",)
                next_bad = next(pending, None)
            yield chunk

    suffix = f"_{bad_rows}bad" if bad_rows else ""
    return SamplePacket(
        client_id=client_id,
        packet_type=packet_type,
        file_name=f"{prof.file_stem or packet_type}_{rows}rows{suffix}.csv",
        content=encode_csv(load_map, chunks(), prof),
        rows=rows,
        bad_lines={i + 2: reason for i in bad_at},
        encoding=prof.encoding,
    )
