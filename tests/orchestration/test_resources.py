"""The resources read the environment when used, never at import or construction."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.settings import SettingsError
from resources import HeraldSettingsResource
from resources.providers import ProvidersResource


def test_providers_resource_reads_the_environment_at_run_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resource = ProvidersResource()
    monkeypatch.setenv("HERALD_HOME", str(tmp_path))
    monkeypatch.delenv("HERALD_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("HERALD_SMS_PROVIDER", raising=False)
    monkeypatch.delenv("HERALD_EMAIL_PROVIDER", raising=False)
    providers = resource.get()
    assert providers["sms"].journal_path == tmp_path.resolve() / "sandbox" / "sms.jsonl"
    monkeypatch.setenv("HERALD_SMS_PROVIDER", "carrier-pigeon")
    with pytest.raises(SettingsError, match="HERALD_SMS_PROVIDER"):
        resource.get()


def test_the_settings_resource_reads_the_environment_each_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resource = HeraldSettingsResource()
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "first"))
    assert resource.get().home == (tmp_path / "first").resolve()
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "second"))
    assert resource.get().home == (tmp_path / "second").resolve()
