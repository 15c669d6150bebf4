"""Settings: defaults, TOML file, environment precedence, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.cli_runner import run
from visage.config import Settings


def test_toml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "visage.toml"
    toml.write_text(f'home = "{tmp_path / "h"}"\nmax_pixels = 1000\ntop_k = 5\n')
    monkeypatch.setenv("VISAGE_CONFIG", str(toml))
    monkeypatch.setenv("VISAGE_TOP_K", "7")
    s = Settings()
    assert (s.home, s.max_pixels, s.top_k) == (tmp_path / "h", 1000, 7)
    assert Settings(top_k=9).top_k == 9


def test_unknown_keys_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "visage.toml"
    toml.write_text("max_pixel = 10\n")  # typo
    monkeypatch.setenv("VISAGE_CONFIG", str(toml))
    with pytest.raises(ValidationError):
        Settings()


def test_cli_reports_a_bad_setting_in_one_line(tmp_path: Path, data: Path) -> None:
    r = run(tmp_path, "detect", str(data / "people/joe_biden/1.jpg"), VISAGE_MAX_PIXELS="lots")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "invalid setting max_pixels" in r.stderr


def test_a_toml_file_in_the_working_directory_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Attack (issue 11, item 12): drop a visage.toml where the operator runs commands, to
    # lower the match threshold or point at another data directory.
    (tmp_path / "visage.toml").write_text(f'home = "{tmp_path / "evil"}"\nmatch_threshold = 0.1\n')
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.match_threshold is None and s.home != tmp_path / "evil"


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    r = run(
        tmp_path,
        "config",
        "show",
        "--json",
        VISAGE_MASTER_KEY="ab" * 32,
        VISAGE_WEBHOOK_SECRET="hook-secret-123",
        VISAGE_MQTT_URL="mqtt://bob:hunter2@127.0.0.1:1883",
        VISAGE_WEBHOOK_URLS='["https://hooks.example/h?token=tok-456&site=door"]',
    )
    assert r.returncode == 0, r.stderr
    for secret in ("ab" * 32, "hook-secret-123", "hunter2", "tok-456"):
        assert secret not in r.stdout
    shown = json.loads(r.stdout)
    assert shown["master_key"] == "***" and shown["webhook_secret"] == "***"
    assert shown["mqtt_url"] == "mqtt://bob:***@127.0.0.1:1883"
    assert shown["webhook_urls"] == ["https://hooks.example/h?token=***&site=door"]
    assert shown["match_threshold"] is None and shown["home"] == str(tmp_path)
