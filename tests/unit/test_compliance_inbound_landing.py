"""The inbound landing area without a warehouse: atomic files a reader never sees half-written,
`herald inbound` landing a reply (and refusing what is not a phone number). The sensor that turns
waiting files into runs is tested in tests/orchestration/test_inbound_events_sensor.py."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli import app
from herald.compliance.inbound import reply_message_key, to_e164
from herald.compliance.landing import InboundMessage, append_inbound, inbound_dir, pending_files, read_landed
from tests.conftest import CONFIG_DIR

AT = datetime(2026, 11, 23, 15, 0)


def message(n: int, body: str = "STOP") -> InboundMessage:
    return InboundMessage(f"SM{n:032d}", "+15125550142", "+15125550100", body, AT)


def test_a_landed_message_round_trips_and_temporary_files_are_never_pending(tmp_path: Path) -> None:
    path = append_inbound(tmp_path, message(1, "Stop texting me pls ✋"))
    assert path.parent == inbound_dir(tmp_path) and path.name.endswith(".jsonl")
    assert read_landed(path) == [message(1, "Stop texting me pls ✋")]
    # a writer that died mid-write leaves only its temporary file: never listed, never read
    (inbound_dir(tmp_path) / ".deadbeef.tmp").write_text('{"inbound_id": "SM1", "bo')
    assert pending_files(tmp_path) == [path]


def test_a_bad_line_names_the_file_and_line(tmp_path: Path) -> None:
    folder = inbound_dir(tmp_path)
    folder.mkdir(parents=True)
    bad = folder / "bad.jsonl"
    bad.write_text(message(1).to_json() + "\n" + json.dumps({"inbound_id": "x", "body": "hi"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl line 2: missing channel, from_address, to_address, received_at"):
        read_landed(bad)


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    """A writer lands big messages while a reader keeps reading every pending file."""
    done = threading.Event()
    problems: list[str] = []
    seen: set[str] = set()

    def reader() -> None:
        while not done.is_set():
            for path in pending_files(tmp_path):
                try:
                    for m in read_landed(path):
                        seen.add(m.inbound_id)
                except FileNotFoundError:
                    pass
                except ValueError as exc:  # a half-written line
                    problems.append(str(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    for n in range(150):
        append_inbound(tmp_path, message(n, "x" * 20_000))
    done.set()
    thread.join()
    assert problems == []
    assert len(pending_files(tmp_path)) == 150
    assert seen  # the reader did read while the writer wrote


def test_to_e164_and_the_reply_key() -> None:
    assert to_e164("+1 512 555 0100") == "+15125550100"
    assert to_e164("(512) 555-0142") == "+15125550142"
    assert to_e164("not a number") is None
    assert reply_message_key("SM1") == reply_message_key("SM1") != reply_message_key("SM2")
    assert len(reply_message_key("SM1")) == 32


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HERALD_CONFIG_DIR", str(CONFIG_DIR))
    monkeypatch.delenv("HERALD_WAREHOUSE_URL", raising=False)
    return tmp_path / "home"


def test_herald_inbound_lands_the_reply_and_never_touches_the_warehouse(home: Path) -> None:
    result = CliRunner().invoke(
        app, ["inbound", "(512) 555-0142", "+1 512 555 0100", "Stop texting me pls", "--id", "SMabc"]
    )
    assert result.exit_code == 0, result.output
    [path] = pending_files(home)
    [landed] = read_landed(path)
    assert (landed.inbound_id, landed.from_address, landed.to_address, landed.body, landed.channel) == (
        "SMabc",
        "+15125550142",
        "+15125550100",
        "Stop texting me pls",
        "sms",
    )
    assert not (home / "warehouse.duckdb").exists()


def test_herald_inbound_help_and_a_bad_number(home: Path) -> None:
    runner = CliRunner()
    help_text = runner.invoke(app, ["inbound", "--help"]).output
    assert "FROM" in help_text and "TO" in help_text and "--id" in help_text and "herald tick" in help_text
    bad = runner.invoke(app, ["inbound", "hello", "+15125550100", "STOP"])
    assert bad.exit_code == 2
    assert pending_files(home) == []
