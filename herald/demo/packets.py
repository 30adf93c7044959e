"""Deterministic sample packets (CSV files) for the example clients.

The *shape* of every file comes from the client's load map: the header row is exactly the
load map's ``columns`` (in order), written with its ``format.delimiter`` and ``format.quote_char``
through :mod:`csv` (so a delimiter inside a value is quoted). Only the *values* come from here,
per canonical field, or per attribute name and type. Change a load map and the generated files
follow it.

* :func:`demo_packets` — a few hundred realistic rows per example packet, with the mess real
  clients send: duplicate people written differently, invalid phones and emails, blank optional
  cells, US dates, "$425,000" prices, Yes/No/Y/N/true booleans, windows-1252 and a UTF-8 BOM, one
  ragged row and one row missing a required value (both listed in ``bad_lines``).
* :func:`sized_packet` — exactly ``rows`` clean rows (1,000 or 1,000,000) plus ``bad_rows``
  ragged ones at spread-out, recorded lines, generated chunk by chunk for benchmarks.
* :func:`write_packets` — lays packets out as ``<folder>/<client_id>/<packet_type>/<file_name>``.

Phone numbers in demo packets are in the 555-0100…555-0199 range, which NANP reserves for
fiction (libphonenumber still calls them valid), and emails use the reserved example.com/.net/.org
domains, so demo data never reaches a real person. ``sized_packet`` needs more distinct numbers than
that range holds, so it uses other exchanges: valid, possibly real — never send them to a live provider.

Where each job lives: :mod:`herald.demo.profiles` (each client's flavour), :mod:`herald.demo.values`
(cell values), :mod:`herald.demo.scenarios` (the demo's messy packets), :mod:`herald.demo.sized`
(exact-size packets), :mod:`herald.demo.csv_files` (CSV bytes, files and drops). This module keeps
the names callers import.
"""

from __future__ import annotations

from herald.demo.csv_files import drop_packets, write_packets
from herald.demo.model import DEFAULT_REFERENCE_DATE, SamplePacket
from herald.demo.scenarios import demo_packets
from herald.demo.sized import SIZED_CHUNK_ROWS, sized_packet

__all__ = [
    "DEFAULT_REFERENCE_DATE",
    "SIZED_CHUNK_ROWS",
    "SamplePacket",
    "demo_packets",
    "drop_packets",
    "sized_packet",
    "write_packets",
]
