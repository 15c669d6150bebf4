"""Modules imported on first use, so that ``visage --help`` imports none of them.

Each command module names the use-cases it calls at module level, as usual, but binds them
to a :class:`LazyModule`: the real module (and SQLAlchemy, ONNX Runtime, OpenCV, FAISS
behind it) is imported when a command first touches one of its names. Type checkers and
import-linter see the real import, written under ``if TYPE_CHECKING:`` beside it::

    if TYPE_CHECKING:
        from visage.usecases import faces as faces_uc
    else:
        faces_uc = lazy("visage.usecases.faces")
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for a module until one of its names is read, then imports it (once: Python
    keeps it in ``sys.modules``)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy(name: str) -> Any:
    """The module ``name``, imported when first used (typed ``Any``: the ``TYPE_CHECKING``
    import beside it gives type checkers the real module)."""
    return LazyModule(name)
