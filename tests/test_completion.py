"""Shell completion (issue 14 §5): ``visage --install-completion`` installs a script that
completes the real commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VISAGE = Path(sys.executable).parent / "visage"
"""The installed console script, as a user calls it (``.venv/bin/visage``)."""


def _visage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VISAGE_", "_VISAGE"))}
    return subprocess.run(
        [str(VISAGE), *args], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_install_completion_then_complete_a_command(tmp_path: Path) -> None:
    # Typer finds the user's shell from the process tree (shellingham); under `make check`,
    # whose recipe runs in sh, it would find sh. Its own switch for tests makes the option
    # take the shell as its value instead: bash, named here.
    r = _visage(
        "--install-completion",
        "bash",
        HOME=str(tmp_path),
        _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1",
    )
    assert r.returncode == 0, r.stderr
    script = tmp_path / ".bash_completions" / "visage.sh"
    assert "_VISAGE_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()
    # What bash asks when the user types `visage sub<TAB>`, then `visage subject s<TAB>`:
    r = _visage(_VISAGE_COMPLETE="complete_bash", COMP_WORDS="visage sub", COMP_CWORD="1")
    assert r.stdout.split() == ["subject"]
    r = _visage(_VISAGE_COMPLETE="complete_bash", COMP_WORDS="visage subject s", COMP_CWORD="2")
    assert r.stdout.split() == ["show"]
