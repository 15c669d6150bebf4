"""Documentation is tested: every setting and CLI option is described, the README lists
every setting, and the README's CLI commands exist."""

from __future__ import annotations

import re

import typer

from tests.conftest import REPO
from visage.cli import app
from visage.config import Settings


def test_every_setting_is_described_and_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        env = f"VISAGE_{name.upper()}"
        assert f"`{env}`" in readme, f"{env} missing from README"


def test_every_cli_option_has_help() -> None:
    def walk(cmd: object, path: str) -> None:
        for param in getattr(cmd, "params", []):
            if getattr(param, "param_type_name", "") == "option" and param.name != "help":
                assert getattr(param, "help", None), f"{path} {param.name}: no help text"
        assert getattr(cmd, "help", None) or path == "visage", f"{path}: no help"
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "visage")


def test_readme_commands_exist() -> None:
    readme = (REPO / "README.md").read_text()
    command = typer.main.get_command(app)
    names = set(getattr(command, "commands", {}))
    used = set(re.findall(r"^visage ([a-z]+)", readme, flags=re.MULTILINE))
    assert used and used <= names, used - names
