"""The ``visage`` command: a thin adapter over :mod:`visage.usecases` (see ``_base``)."""

from visage.cli import commands as commands
from visage.cli import governance as governance
from visage.cli import halt as halt
from visage.cli import media as media
from visage.cli import models as models
from visage.cli import settings as settings
from visage.cli import signage as signage
from visage.cli import store as store
from visage.cli import users as users
from visage.cli._base import app

__all__ = ["app", "main"]


def main() -> None:
    app()
