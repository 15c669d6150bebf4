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
import threading
from collections.abc import Callable
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


class LazyCall:
    """A class or function of a module, imported when first called: ``Table(title=...)``
    works as with the real class, which a type checker sees through ``TYPE_CHECKING``."""

    __slots__ = ("_module", "_name")

    def __init__(self, module: str, name: str) -> None:
        self._module, self._name = module, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(self._module), self._name)(*args, **kwargs)


def lazy_call(module: str, name: str) -> Any:
    return LazyCall(module, name)


class LazyObject:
    """An object made by ``factory`` when one of its attributes is first read (the consoles:
    rich is not imported by a command that prints nothing, such as ``--help``)."""

    __slots__ = ("_factory", "_lock", "_made")

    def __init__(self, factory: Callable[[], object]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._made: object | None = None

    def _object(self) -> Any:
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = self._factory()
        return self._made

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._object(), attr)

    # Special methods are looked up on the type, never through __getattr__: a console is
    # also a context manager (rich's Live enters it).
    def __enter__(self) -> Any:
        return self._object().__enter__()

    def __exit__(self, *exc: object) -> Any:
        return self._object().__exit__(*exc)


def lazy_object(factory: Callable[[], object]) -> Any:
    return LazyObject(factory)
