"""Anonymise a folder: every video and image under ``IN_DIR`` into the same relative path
under ``OUT_DIR``, in this process, in N local worker processes, or as Ray tasks.

Resumable: each output is written under a temporary name and renamed into place only when
it is complete (:func:`visage.usecases.anonymize.mask_file`), and ``OUT_DIR/.visage-batch.json``
records, per finished file, what it was made from (the input's size, mtime and the SHA-256 of
its first MiB) and with which settings. A file whose output exists and whose record still
matches is skipped; anything else is done (again). The record is written by this process
only, after the output is in place, so a crash between the two costs one file done twice.

Workers need the models, never the data directory: they recognise nobody and record
nothing. This process audits each anonymised file, where a data directory exists. Inputs
and outputs travel as paths, never as bytes: on Ray, IN_DIR and OUT_DIR must be on storage
every worker sees at the same path, and the raw footage never enters Ray's object store
(which travels unauthenticated and spills to local disk); a bystander's face is unmasked
only in a worker's memory. ``--keep-enrolled`` runs in this process only (it recognises
people from the gallery, which stays here).

Same settings, same bytes: the video encoder's thread count is pinned
(:data:`ENCODER_THREADS`), since x264's output depends on it; so a file anonymised by Ray
is byte-identical to the same file anonymised here (on machines with the same instruction
set: the detector's floating point follows the CPU's SIMD paths).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from enum import StrEnum
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from visage.config import Settings
from visage.core import Visage
from visage.errors import InputError, VisageError
from visage.governance.audit import Actor
from visage.media.redact import RedactOptions
from visage.media.video import VIDEO_SUFFIXES
from visage.usecases import anonymize as single
from visage.usecases.anonymize import IMAGE_SUFFIXES, ProgressFn
from visage.usecases.matching import MatchOperation, PurposeMatcher

MANIFEST = ".visage-batch.json"
ENCODER_THREADS = 2
"""x264 threads of every batch encode: fixed, so that outputs do not depend on the machine."""
_PREFIX = 1 << 20  # bytes of each input hashed for its fingerprint


class Status(StrEnum):
    anonymised = "anonymised"
    skipped = "skipped"
    failed = "failed"


class BatchItem(BaseModel):
    path: str = Field(description="relative to IN_DIR (and to OUT_DIR)")
    status: Status
    reason: str | None = Field(default=None, description="why it failed, or was skipped")
    kind: str | None = None
    frames: int = 0
    faces_masked: int = 0
    seconds: float = 0.0
    audited: bool = False


class BatchReport(BaseModel):
    input: str
    output: str
    runner: str = Field(description="local, or ray")
    workers: int
    anonymised: int
    skipped: int
    failed: int
    seconds: float
    items: list[BatchItem]


class BatchSettings(BaseModel):
    """What decides an output's bytes: an output made with other settings is made again.
    Also what a worker builds its core from: the models' settings only — never the data
    directory's keys or secrets, which a worker elsewhere must not receive."""

    threshold: float
    mode: str
    shape: str
    margin: float
    codec: str | None
    crf: int
    detect_threshold: float
    detect_max_side: int
    detect_min_side: int
    max_pixels: int
    max_bytes: int

    def options(self) -> RedactOptions:
        from visage.media.modes import BlurMode, MaskShape

        return RedactOptions(
            threshold=self.threshold,
            mode=BlurMode(self.mode),
            shape=MaskShape(self.shape),
            margin=self.margin,
        )

    def worker_core(self, threads: int) -> Visage:
        """A core for a worker: models only; its data directory is never opened."""
        return Visage(
            Settings(
                detect_threshold=self.detect_threshold,
                detect_max_side=self.detect_max_side,
                detect_min_side=self.detect_min_side,
                max_pixels=self.max_pixels,
                max_bytes=self.max_bytes,
                num_threads=threads,
            )
        )


def batch_settings(
    core: Visage, options: RedactOptions, codec: str | None, crf: int
) -> BatchSettings:
    s = core.settings
    return BatchSettings(
        threshold=options.threshold,
        mode=str(options.mode.value),
        shape=str(options.shape.value),
        margin=options.margin,
        codec=codec,
        crf=crf,
        detect_threshold=s.detect_threshold,
        detect_max_side=s.detect_max_side,
        detect_min_side=s.detect_min_side,
        max_pixels=s.max_pixels,
        max_bytes=s.max_bytes,
    )


class Job(BaseModel):
    """One file for a worker: paths (never bytes) and the settings."""

    rel: str
    source: str
    output: str
    settings: BatchSettings


def is_batch(source: Path) -> bool:
    return source.is_dir()


def discover(in_dir: Path, out_dir: Path) -> list[str]:
    """Relative paths of the videos and images under ``in_dir``, sorted; hidden files and
    folders (a temporary ``.part`` file, say) are left out."""
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: not a folder")
    src, dst = in_dir.resolve(), out_dir.resolve()
    if dst == src or dst.is_relative_to(src) or src.is_relative_to(dst):
        raise InputError(
            f"{out_dir}: the output folder must be outside the input folder (and not contain it)"
        )
    known = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    found = []
    for path in in_dir.rglob("*"):
        rel = path.relative_to(in_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in known:
            found.append(rel.as_posix())
    return sorted(found)


def fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    with path.open("rb") as fh:
        head = hashlib.sha256(fh.read(_PREFIX)).hexdigest()[:32]
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_head": head}


class Manifest:
    """``OUT_DIR/.visage-batch.json``: per relative path, the input's fingerprint, the
    settings and the output's size when it was finished. Rewritten whole (temp + rename)."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / MANIFEST
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            loaded = json.loads(self.path.read_text())
            if isinstance(loaded, dict) and isinstance(loaded.get("files"), dict):
                self.entries = loaded["files"]
        except (OSError, ValueError):
            pass  # none yet, or unreadable: everything is done again

    def finished(self, rel: str, source: Path, output: Path, settings: BatchSettings) -> bool:
        entry = self.entries.get(rel)
        if entry is None or not output.is_file():
            return False
        if entry.get("settings") != settings.model_dump(mode="json"):
            return False
        if entry.get("output_size") != output.stat().st_size:
            return False
        return bool(entry.get("input") == fingerprint(source))

    def add(self, rel: str, source: Path, output: Path, settings: BatchSettings) -> None:
        self.entries[rel] = {
            "input": fingerprint(source),
            "settings": settings.model_dump(mode="json"),
            "output_size": output.stat().st_size,
        }
        tmp = self.path.with_name(f"{MANIFEST}.part")
        tmp.write_text(json.dumps({"version": 1, "files": self.entries}, indent=1))
        os.replace(tmp, self.path)


def run_job(core: Visage, job: Job, progress: ProgressFn | None = None) -> BatchItem:
    """Anonymise one file; any failure becomes the item's reason (never raised: one bad
    file does not stop the batch)."""
    output = Path(job.output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        report = single.mask_file(
            core,
            Path(job.source),
            output,
            options=job.settings.options(),
            codec=job.settings.codec,
            crf=job.settings.crf,
            encoder_threads=ENCODER_THREADS,
            progress=progress,
        )
    except VisageError as exc:
        return BatchItem(path=job.rel, status=Status.failed, reason=exc.message)
    except Exception as exc:  # a decoder's or the filesystem's error: reported, not raised
        return BatchItem(path=job.rel, status=Status.failed, reason=f"{type(exc).__name__}: {exc}")
    return BatchItem(
        path=job.rel,
        status=Status.anonymised,
        kind=report.kind,
        frames=report.frames,
        faces_masked=report.faces_masked,
        seconds=report.seconds,
    )


# -- runners: each yields the items of ``jobs`` as they finish -------------------------------

FileProgress = Callable[[str, int, int], None]
"""(relative path, frames done, frames in the file) of the file this process works on."""


def _in_process(core: Visage, jobs: list[Job], frames: FileProgress | None) -> Iterator[BatchItem]:
    for job in jobs:
        done: ProgressFn | None = None
        if frames is not None:
            rel = job.rel

            def done(n: int, total: int, rel: str = rel) -> None:
                frames(rel, n, total)

            frames(job.rel, 0, 0)
        yield run_job(core, job, done)


_WORKER_CORE: list[Visage] = []
"""A worker process's own core (models loaded once per process by :func:`_init_worker`):
the one core of that process, as everywhere else."""


def _init_worker(settings: BatchSettings, threads: int) -> None:
    core = settings.worker_core(threads)
    _ = core.analyzer.detector  # load now, not inside the first file's timing
    _WORKER_CORE.append(core)


def _pool_job(job: Job) -> BatchItem:
    return run_job(_WORKER_CORE[0], job)


def _local_pool(jobs: list[Job], workers: int) -> Iterator[BatchItem]:
    """``workers`` processes (spawned: a fork of a process running ONNX Runtime's threads
    may hang), each loading the models once and sharing this machine's cores."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(jobs[0].settings, threads),
    ) as pool:
        futures: dict[Future[BatchItem], Job] = {pool.submit(_pool_job, j): j for j in jobs}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # the worker process died (out of memory, a signal)
                rel = futures[future].rel
                reason = f"worker failed: {type(exc).__name__}: {exc}"
                yield BatchItem(path=rel, status=Status.failed, reason=reason)


class RayWorker:
    """A Ray actor: one core (models loaded once) for every file sent to it. One Ray task
    (an actor call) per file."""

    def __init__(self, settings: BatchSettings) -> None:
        self.core = settings.worker_core(1)  # one CPU per actor
        _ = self.core.analyzer.detector

    def run(self, job: Job) -> BatchItem:
        if not Path(job.source).is_file():
            import socket

            return BatchItem(
                path=job.rel,
                status=Status.failed,
                reason=f"{job.source} is not visible on worker {socket.gethostname()}: "
                "the input and output folders must be on storage every Ray node sees at "
                "the same path",
            )
        return run_job(self.core, job)


def _ray(jobs: list[Job], address: str, workers: int | None) -> Iterator[BatchItem]:
    """One actor per CPU of the cluster (or ``workers``); one task per file. ``address``:
    ``local`` starts Ray in this process, ``auto`` or ``HOST:PORT`` / ``ray://…`` joins a
    cluster. Where Ray is already initialised (a Ray driver calling this), that is used."""
    try:
        import ray as ray_module
        from ray.util import ActorPool
    except ImportError:
        raise InputError(
            "--ray needs Ray: pip install 'visage[cluster]' (on this machine and every node)"
        ) from None
    ray: Any = ray_module  # partly typed: its calls are checked by the tests
    started = False
    if not ray.is_initialized():
        if address == "local":
            ray.init(
                num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False
            )
        else:
            try:
                ray.init(address=address)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise InputError(f"cannot join the Ray cluster at {address}: {exc}") from None
        started = True
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = max(1, min(workers or cpus, len(jobs)))
        actor = ray.remote(num_cpus=1)(RayWorker)
        pool = ActorPool([actor.remote(jobs[0].settings) for _ in range(count)])
        yield from pool.map_unordered(lambda a, job: a.run.remote(job), jobs)
    finally:
        if started:
            ray.shutdown()


def anonymize_folder(
    core: Visage,
    in_dir: Path,
    out_dir: Path,
    *,
    options: RedactOptions | None = None,
    codec: str | None = None,
    crf: int = 23,
    workers: int = 1,
    ray: str | None = None,
    keep_enrolled: bool = False,
    purpose: str | None = None,
    authorisation_ref: str | None = None,
    actor: Actor | None = None,
    files: Callable[[int, int], None] | None = None,
    frames: FileProgress | None = None,
) -> BatchReport:
    """Anonymise every video and image under ``in_dir`` into ``out_dir`` (see the module).
    ``files(done, total)`` follows the files; ``frames`` the frames of the file this
    process works on (in-process runs only: workers report files as they finish)."""
    options = options or RedactOptions()
    actor = actor or Actor.local()
    if workers < 1:
        raise InputError("--workers must be at least 1")
    if keep_enrolled and (ray is not None or workers > 1):
        raise InputError(
            "--keep-enrolled runs in this process only (not with --workers or --ray): "
            "enrolled people are recognised from the gallery, and its keys stay here"
        )
    if keep_enrolled and not purpose:
        raise InputError(
            "keeping enrolled people unmasked needs a purpose: they are recognised only "
            "for a purpose they consented to"
        )
    rels = discover(in_dir, out_dir)
    audited = single.plan(core, keep_enrolled=keep_enrolled).audited
    if keep_enrolled and purpose:
        # The gate first (audited if it refuses): a refused run leaves nothing behind, not
        # even its output folder. Each file's run checks it again, as a single file's does.
        PurposeMatcher(
            core, purpose, actor, MatchOperation.anonymize, authorisation_ref=authorisation_ref
        ).check_gate()
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = batch_settings(core, options, codec, crf)
    manifest = Manifest(out_dir)
    items: list[BatchItem] = []
    jobs: list[Job] = []
    for rel in rels:
        source, output = in_dir / rel, out_dir / rel
        if manifest.finished(rel, source, output, settings):
            items.append(BatchItem(path=rel, status=Status.skipped, reason="already anonymised"))
        else:
            jobs.append(Job(rel=rel, source=str(source), output=str(output), settings=settings))
    started = time.perf_counter()
    total = len(rels)
    if files is not None:
        files(len(items), total)
    if keep_enrolled:
        results: Iterable[BatchItem] = _kept(core, jobs, purpose, authorisation_ref, actor)
    elif not jobs:
        results = []
    elif ray is not None:
        results = _ray(jobs, ray, workers if workers > 1 else None)
    elif workers > 1:
        results = _local_pool(jobs, min(workers, len(jobs)))
    else:
        results = _in_process(core, jobs, frames)
    for item in results:
        if item.status is Status.anonymised:
            source, output = in_dir / item.path, out_dir / item.path
            if audited and not item.audited:
                report = single.AnonymizeReport(
                    input=str(source),
                    output=str(output),
                    kind=item.kind or "video",
                    frames=item.frames,
                    faces_masked=item.faces_masked,
                    kept_visible=0,
                    tracks=0,
                    seconds=item.seconds,
                    fps=0.0,
                )
                single.record(core, actor, report)
                item.audited = True
            manifest.add(item.path, source, output, settings)
        items.append(item)
        if files is not None:
            files(len(items), total)
    items.sort(key=lambda i: i.path)
    count = {s: sum(1 for i in items if i.status is s) for s in Status}
    return BatchReport(
        input=str(in_dir),
        output=str(out_dir),
        runner="ray" if ray is not None else "local",
        workers=workers,
        anonymised=count[Status.anonymised],
        skipped=count[Status.skipped],
        failed=count[Status.failed],
        seconds=round(time.perf_counter() - started, 3),
        items=items,
    )


def _kept(
    core: Visage,
    jobs: list[Job],
    purpose: str | None,
    authorisation_ref: str | None,
    actor: Actor,
) -> Iterator[BatchItem]:
    """``--keep-enrolled``: the single-file use-case per file, in this process (it checks
    the gate, recognises for the purpose and audits each file itself)."""
    for job in jobs:
        try:
            Path(job.output).parent.mkdir(parents=True, exist_ok=True)
            report = single.anonymize(
                core,
                Path(job.source),
                Path(job.output),
                options=job.settings.options(),
                keep_enrolled=True,
                purpose=purpose,
                codec=job.settings.codec,
                crf=job.settings.crf,
                actor=actor,
                authorisation_ref=authorisation_ref,
            )
        except VisageError as exc:
            if not isinstance(exc, InputError):
                raise  # the gate refused, or the store failed: the same for every file
            yield BatchItem(path=job.rel, status=Status.failed, reason=exc.message)
            continue
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            yield BatchItem(path=job.rel, status=Status.failed, reason=reason)
            continue
        yield BatchItem(
            path=job.rel,
            status=Status.anonymised,
            kind=report.kind,
            frames=report.frames,
            faces_masked=report.faces_masked,
            seconds=report.seconds,
            audited=report.audited,
        )
