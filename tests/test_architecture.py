"""The import architecture: the contracts in pyproject.toml (``[tool.importlinter]``) hold.

Doors (CLI, API) > use-cases > the core object > domain (governance > gallery, media,
notify > vision) > store, config, errors; no cycles between sibling packages or modules.
A new import that points up or closes a circle fails here with the chain that does it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), "import-linter is a test extra: pip install -e '.[test]'"
    run = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout
