"""Sample rows to CSV bytes in a load map's own dialect and encoding (with the ragged rows real
files have), and packets to files: a folder tree for tests, a drop zone for the demo."""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from herald.config.models import LoadMap
from herald.demo.model import SamplePacket
from herald.demo.profiles import Profile
from herald.demo.values import Values, key_of


def encode_csv(load_map: LoadMap, chunks: Iterable[Iterable[Sequence[str]]], prof: Profile) -> bytes:
    """Header + rows through :mod:`csv` with the load map's delimiter and quote char, encoded."""
    out = io.BytesIO()
    codec = "utf-8" if prof.encoding == "utf-8-sig" else prof.encoding
    if prof.encoding == "utf-8-sig":
        out.write(codecs.BOM_UTF8)
    buf = io.StringIO(newline="")
    writer = csv.writer(
        buf,
        delimiter=load_map.format.delimiter,
        quotechar=load_map.format.quote_char,
        lineterminator=prof.line_terminator,
        quoting=csv.QUOTE_MINIMAL,
    )
    writer.writerow(list(load_map.columns))
    for chunk in chunks:
        writer.writerows(chunk)
        out.write(buf.getvalue().encode(codec))
        buf.seek(0)
        buf.truncate()
    out.write(buf.getvalue().encode(codec))
    return out.getvalue()


def render_rows(load_map: LoadMap, records: Sequence[dict[str, str]], values: Values) -> list[list[str]]:
    """One list per record in load-map column order; columns the record lacks get a clean value."""
    targets = list(load_map.columns.values())
    return [[rec[key_of(t)] if key_of(t) in rec else values.column(t) for t in targets] for rec in records]


def _required_columns(load_map: LoadMap) -> set[str]:
    fields = load_map.field_columns()
    return {fields[f] for f in load_map.required if f in fields}


def make_ragged(row: list[str], load_map: LoadMap) -> str:
    """Turn ``row`` into one field too many, the way an unquoted comma does; returns the reason."""
    headers = list(load_map.columns)
    required = _required_columns(load_map)
    width = len(headers)
    for i, header in enumerate(headers):
        value = row[i]
        if header not in required and ", " in value:
            head, tail = value.split(", ", 1)
            row[i : i + 1] = [head, " " + tail]
            return (
                f"ragged row: {width + 1} fields but the header has {width} (unquoted comma in {header!r}: {value!r})"
            )
    row.append("EXTRA")
    return f"ragged row: {width + 1} fields but the header has {width} (a stray trailing value)"


def write_packets(packets: Iterable[SamplePacket], folder: Path) -> list[Path]:
    """Write each packet to ``folder/<client_id>/<packet_type>/<file_name>``; returns the paths."""
    paths: list[Path] = []
    for packet in packets:
        path = Path(folder) / packet.client_id / packet.packet_type / packet.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(packet.content)
        paths.append(path)
    return paths


def drop_packets(zone: Any, packets: Iterable[SamplePacket], stamp: str) -> Iterator[str]:
    """Put each packet in ``zone`` (a :mod:`herald.dropzone` zone) as its client would upload it,
    named ``<stem>-<stamp><suffix>`` so a second demo run drops new files; yields a line per packet."""
    with tempfile.TemporaryDirectory() as tmp:
        for packet in packets:
            local = Path(tmp) / packet.file_name
            local.write_bytes(packet.content)
            name = f"{Path(packet.file_name).stem}-{stamp}{Path(packet.file_name).suffix}"
            zone.put(local, packet.client_id, packet.packet_type, name)
            yield f"dropped {packet.client_id}/{packet.packet_type}/{name} ({packet.rows} rows, {packet.encoding})"
