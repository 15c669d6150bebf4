"""Settings: defaults, TOML file, environment precedence, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.test_cli import run
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
