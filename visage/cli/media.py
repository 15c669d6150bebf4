"""Media commands: anonymise images and videos, watch cameras and streams."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from visage.cli._base import (
    AuthorisationRef,
    JsonFlag,
    _core,
    _emit_json,
    _Exit,
    app,
    err,
    guarded,
    out,
)
from visage.cli._ids import short
from visage.cli._lazy import lazy, lazy_call
from visage.errors import InputError
from visage.media.modes import BlurMode, MaskShape

if TYPE_CHECKING:  # imported when a command runs (see visage.cli._lazy)
    from rich.progress import Progress
    from rich.table import Table

    from visage.core import Visage
    from visage.media import redact
    from visage.usecases import anonymize as anonymize_uc
    from visage.usecases import batch as batch_uc
    from visage.usecases import cameras as cameras_uc
    from visage.usecases import watch as watch_uc
else:
    Table = lazy_call("rich.table", "Table")
    redact = lazy("visage.media.redact")
    anonymize_uc = lazy("visage.usecases.anonymize")
    batch_uc = lazy("visage.usecases.batch")
    cameras_uc = lazy("visage.usecases.cameras")
    watch_uc = lazy("visage.usecases.watch")

cameras_app = typer.Typer(
    help="Cameras the server (visage serve) watches, with their status.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(cameras_app, name="cameras")


def _frame_progress(*, eta: bool = False, quiet: bool = False) -> Progress:
    """Frames, fps, elapsed (and with ``eta``, time left) on a terminal's stderr; nothing
    when ``quiet`` (``--json``) or when stderr is not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[str | ProgressColumn] = [
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]} fps"),
        TimeElapsedColumn(),
    ]
    if eta:
        columns += [TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(
        *columns,
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    )


@app.command()
@guarded
def anonymize(
    source: Annotated[
        Path,
        typer.Argument(
            help="Image or video file (mp4, mkv, webm, avi), or a folder: every video and "
            "image under it (batch; resumable)."
        ),
    ],
    output: Annotated[
        Path,
        typer.Argument(
            help="Where to write; the type follows the suffix. For a folder: the output "
            "folder (same relative paths)."
        ),
    ],
    mode: Annotated[
        BlurMode, typer.Option("--mode", help="gaussian (default), pixelate or solid.")
    ] = BlurMode.gaussian,
    shape: Annotated[
        MaskShape, typer.Option("--shape", help="ellipse (default) or box.")
    ] = MaskShape.ellipse,
    margin: Annotated[
        float,
        typer.Option(
            "--margin", help="Grow each face box by this fraction per side (the whole head)."
        ),
    ] = 0.25,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            help="Detector score threshold; lower masks more (and more false positives).",
        ),
    ] = 0.25,
    keep_enrolled: Annotated[
        bool,
        typer.Option(
            "--keep-enrolled",
            help="Leave enrolled people visible whose consent covers --purpose; mask all others.",
        ),
    ] = False,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Purpose for --keep-enrolled.")
    ] = None,
    authorisation_ref: AuthorisationRef = None,
    codec: Annotated[
        str | None,
        typer.Option("--codec", help="Video codec: libx264 (mp4/mkv/avi), libvpx-vp9 (webm)."),
    ] = None,
    crf: Annotated[
        int, typer.Option("--crf", help="Video quality: lower is better and larger (0-51).")
    ] = 23,
    workers: Annotated[
        int, typer.Option("--workers", help="Folder: files anonymised at once (processes).")
    ] = 1,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Folder: one Ray task per file on the cluster at this address (auto, "
            "HOST:PORT, ray://...), or 'local' to start Ray here. Needs visage[cluster].",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Mask every face (irreversibly) in an image or a video; audio is kept."""
    options = redact.RedactOptions(threshold=threshold, mode=mode, shape=shape, margin=margin)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    core = _core()
    if source.is_dir():
        _anonymize_folder(
            core,
            source,
            output,
            options=options,
            keep_enrolled=keep_enrolled,
            purpose=purpose,
            authorisation_ref=authorisation_ref,
            codec=codec,
            crf=crf,
            workers=workers,
            ray=ray,
            as_json=as_json,
        )
        return
    if workers != 1 or ray is not None:
        err.print("visage: note: --workers and --ray apply to a folder; one file runs here")
    # Before any frame: a data directory that is needed and missing fails now, and a run
    # that cannot be audited says so now.
    if not anonymize_uc.plan(core, keep_enrolled=keep_enrolled).audited:
        err.print(
            f"visage: note: no data directory in {core.home}: masking everyone, not audited "
            "(run `visage init` to audit anonymisations)",
            highlight=False,
            soft_wrap=True,
        )
    with _frame_progress(eta=True, quiet=as_json) as bar:
        task = bar.add_task("anonymising", total=None, fps="-")

        def progress(done: int, total: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            fps = f"{done / elapsed:.1f}" if elapsed else "-"
            bar.update(task, completed=done, total=total or None, fps=fps)

        report = anonymize_uc.anonymize(
            core,
            source,
            output,
            options=options,
            keep_enrolled=keep_enrolled,
            purpose=purpose,
            authorisation_ref=authorisation_ref,
            codec=codec,
            crf=crf,
            progress=progress,
        )
    if as_json:
        _emit_json(report)
    else:
        out.print(
            f"wrote {report.output}: {report.frames} frame(s), {report.faces_masked} face "
            f"regions masked, {report.kept_visible} kept visible, {report.fps} fps"
        )


def _anonymize_folder(
    core: Visage,
    source: Path,
    output: Path,
    *,
    as_json: bool,
    **kwargs: Any,
) -> None:
    """Batch mode: files and the current file's frames on a terminal, a table of results
    (or JSON), exit status 1 when any file failed."""
    if not anonymize_uc.plan(core, keep_enrolled=kwargs["keep_enrolled"]).audited:
        err.print(
            f"visage: note: no data directory in {core.home}: masking everyone, not audited",
            highlight=False,
            soft_wrap=True,
        )
    with _frame_progress(eta=True, quiet=as_json) as bar:
        files = bar.add_task("files", total=None, fps="-")
        frames = bar.add_task("", total=None, fps="-", visible=False)

        def on_files(done: int, total: int) -> None:
            bar.update(files, completed=done, total=total)

        def on_frames(rel: str, done: int, total: int) -> None:
            elapsed = bar.tasks[1].elapsed or 0.0
            fps = f"{done / elapsed:.1f}" if elapsed and done else "-"
            if done == 0:
                bar.reset(frames, description=rel, total=None, visible=True)
            bar.update(frames, completed=done, total=total or None, fps=fps)

        report = batch_uc.anonymize_folder(
            core, source, output, files=on_files, frames=on_frames, **kwargs
        )
    if as_json:
        _emit_json(report)
    else:
        table = Table(
            title=f"{report.anonymised} anonymised, {report.skipped} skipped, {report.failed} "
            f"failed ({report.runner}, {report.seconds:.1f} s)"
        )
        for col in ("file", "result", "frames", "faces masked", "reason"):
            table.add_column(col)
        for item in report.items:
            table.add_row(
                item.path,
                item.status.value,
                str(item.frames) if item.frames else "",
                str(item.faces_masked) if item.status.value == "anonymised" else "",
                item.reason or "",
            )
        out.print(table)
    if report.failed:
        raise _Exit(1)


@app.command()
@guarded
def watch(
    source: Annotated[
        str,
        typer.Argument(
            help="A video file, an http(s):// or rtsp:// stream, or a webcam (0 or /dev/video0)."
        ),
    ],
    purpose: Annotated[
        str, typer.Option("--purpose", help="Only subjects whose consent covers it are named.")
    ],
    camera: Annotated[
        str, typer.Option("--camera", help="Camera name recorded with each event.")
    ] = "default",
    record: Annotated[
        Path | None,
        typer.Option("--record", help="Also write an anonymised recording to this file."),
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", help="Stop after this many frames.")
    ] = None,
    max_reconnects: Annotated[
        int | None,
        typer.Option(
            "--max-reconnects", help="Give up after this many reconnects (default: never)."
        ),
    ] = None,
    authorisation_ref: AuthorisationRef = None,
    as_json: JsonFlag = False,
) -> None:
    """Recognise enrolled, consenting people in a video or live stream; events only for them."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _frame_progress() as bar:
            task = bar.add_task(f"watching {camera}", total=None, fps="-")

            def progress(done: int) -> None:
                elapsed = bar.tasks[0].elapsed or 0.0
                bar.update(task, completed=done, fps=f"{done / elapsed:.1f}" if elapsed else "-")

            report = watch_uc.watch(
                _core(),
                source,
                purpose,
                watch_uc.WatchOptions(
                    camera=camera,
                    record=record,
                    max_frames=max_frames,
                    max_reconnects=max_reconnects,
                ),
                stop=stop,
                progress=progress,
                authorisation_ref=authorisation_ref,
            )
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if as_json:
        _emit_json(report)
        return
    table = Table(
        title=f"{report.frames} frames, {report.tracks} tracks, {report.reconnects} "
        f"reconnects ({report.stopped})"
    )
    for col in ("subject", "start", "end", "in clip (s)", "best score", "frames", "review"):
        table.add_column(col)
    for e in report.events:
        in_clip = (
            f"{e.media_start_s:.1f}-{e.media_end_s:.1f}"
            if e.media_start_s is not None and e.media_end_s is not None
            else "-"  # a live source: the clock is the only time
        )
        table.add_row(
            short(e.subject_id) or "(withheld until reviewed)",
            e.started_at.strftime("%H:%M:%S.%f")[:-3],
            e.ended_at.strftime("%H:%M:%S.%f")[:-3],
            in_clip,
            f"{e.best_score:.3f}" if e.best_score is not None else "-",
            str(e.frames),
            short(e.review_id),
        )
    out.print(table)


@cameras_app.command("list")
@guarded
def cameras_list(as_json: JsonFlag = False) -> None:
    """Cameras with their sources masked and their status as this process sees it (here,
    enabled cameras are "unsupervised": the server is what watches them)."""
    cameras = cameras_uc.list_cameras(_core())
    if as_json:
        _emit_json(cameras)
        return
    table = Table(title=f"{len(cameras)} camera(s)")
    for col in ("name", "source", "purpose", "enabled", "state", "last error"):
        table.add_column(col)
    for c in cameras:
        table.add_row(
            c.name,
            c.source,
            c.purpose,
            "yes" if c.enabled else "no",
            c.status.state.value,
            c.status.last_error or "",
        )
    out.print(table)
