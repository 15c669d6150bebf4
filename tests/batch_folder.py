"""A folder to anonymise in batch (tests of ``visage anonymize IN_DIR OUT_DIR``): two short
copies of the Hamilton clip (one in a subfolder), two still scenes and one corrupt video."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tests.conftest import clip_head

CORRUPT = "broken.mp4"
GOOD = ["a.mp4", "scenes/obama_and_biden.jpg", "scenes/two_people.jpg", "sub/b.mp4"]


CLIP_FRAMES = 11
"""Frames of each clip at the default length: what a batch claims (paths mirrored, skips,
redos, identical bytes) holds for any length, and every frame costs a detection in each run."""


def make_folder(data: Path, folder: Path, seconds: float = 0.34) -> Path:
    """``folder`` filled as the module says; the clips are the first ``seconds`` of the
    Hamilton clip (by default :data:`CLIP_FRAMES` frames), packets copied (no
    re-encoding)."""
    (folder / "sub").mkdir(parents=True)
    (folder / "scenes").mkdir()
    clip_head(data / "video/hamilton_clip.mp4", folder / "a.mp4", seconds)
    shutil.copy(folder / "a.mp4", folder / "sub/b.mp4")
    for name in ("two_people.jpg", "obama_and_biden.jpg"):
        shutil.copy(data / "scenes" / name, folder / "scenes" / name)
    # The start of a real MP4 with the rest missing: a header, then nothing decodable.
    (folder / CORRUPT).write_bytes((folder / "a.mp4").read_bytes()[:600] + b"\0" * 4000)
    (folder / "notes.txt").write_text("not media: left alone")
    return folder


def digests(out_dir: Path) -> dict[str, str]:
    """SHA-256 of every output file under ``out_dir`` (relative path: digest); hidden files
    (the manifest) left out."""
    return {
        p.relative_to(out_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out_dir.rglob("*"))
        if p.is_file() and not any(s.startswith(".") for s in p.relative_to(out_dir).parts)
    }


def leftovers(out_dir: Path) -> list[str]:
    """Temporary files (``.part``) anywhere under ``out_dir``."""
    return sorted(p.name for p in out_dir.rglob("*") if ".part" in p.name)
