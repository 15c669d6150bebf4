"""Model lifecycle: one base class loads a model on first use, once, thread-safely.

Subclasses say what they are (``name``) and how to load (``_load``). Model files come only
from installed packages; :func:`package_file` finds them without importing the package
(some ship heavy imports we do not need) and names the package when one is missing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import tempfile
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Generic, TypeVar

from visage.errors import ModelMissingError

T = TypeVar("T")


def package_file(package: str, relative: str, pip_name: str | None = None) -> Path:
    """Path of ``relative`` inside the installed package ``package``.

    Raises :class:`ModelMissingError` naming the pip package when it is not installed.
    """
    spec = importlib.util.find_spec(package)
    hint = pip_name or package
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(
            f"model package '{hint}' is not installed; install it with: pip install {hint}"
        )
    for base in spec.submodule_search_locations:
        candidate = Path(base) / relative
        if candidate.is_file():
            return candidate
    raise ModelMissingError(
        f"model file {relative} is missing from package '{hint}'; reinstall it with: "
        f"pip install --force-reinstall {hint}"
    )


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file and a rename, so that another
    process never reads half a file (two processes converting at once both succeed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> str:
    """SHA-256 of a model file, computed once per file version (path, size, mtime)."""
    st = path.stat()
    return _sha256_of(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class LazyModel(ABC, Generic[T]):
    """Owns one model's life: load on first use (once, under a lock), then reuse."""

    name: str = "model"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: T | None = None

    @property
    def model(self) -> T:
        loaded = self._loaded
        if loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._load()
                loaded = self._loaded
        return loaded

    @abstractmethod
    def _load(self) -> T:
        """Load and return the underlying model object."""
