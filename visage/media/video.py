"""Video in and out with PyAV (FFmpeg): files, HTTP/RTSP streams and webcams.

Reading yields decoded RGB frames and, for files whose audio should be kept, the audio
packets untouched, in container order. Writing encodes frames (H.264 for mp4/mkv/avi, VP9
for webm) and copies the audio packets across (or re-encodes them when the output container
cannot hold the input's audio codec). Every FFmpeg failure becomes an ``InputError`` with
one readable line; network sources have open and read timeouts so nothing hangs.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Generic, TypeVar

import av
import numpy as np

from visage.errors import InputError
from visage.media.image import RGBImage
from visage.media.sources import mask_source, protocol_whitelist, scrub

VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v"}
_ENCODER = {".webm": "libvpx-vp9"}
_AUDIO_FOR = {".webm": "libopus", ".avi": "mp3"}
T = TypeVar("T")


@dataclass(frozen=True)
class Frame:
    index: int
    pixels: RGBImage


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int
    codec: str
    has_audio: bool


def is_live(source: str) -> bool:
    return source.isdigit() or "://" in source or source.startswith("/dev/video")


def _open_args(source: str, timeout_s: float) -> tuple[str, dict[str, Any]]:
    if source.isdigit():
        return f"/dev/video{source}", {"format": "v4l2"}
    if source.startswith("/dev/video"):
        return source, {"format": "v4l2"}
    if "://" in source:
        protocols = protocol_whitelist(source)
        if protocols is None:
            raise InputError(
                f"{mask_source(source)}: unsupported source; use a file path, an "
                "http(s):// or rtsp(s):// URL, or a webcam"
            )
        us = str(int(timeout_s * 1_000_000))
        # Only the protocols this scheme needs: a redirect, a playlist or a nested URL
        # cannot reach file:, pipe:, concat: or any other protocol.
        options = {"rw_timeout": us, "protocol_whitelist": protocols}
        if source.startswith("rtsp"):
            options["rtsp_transport"] = "tcp"
        return source, {"options": options, "timeout": (timeout_s, timeout_s)}
    path = Path(source)
    if not path.exists():
        raise InputError(f"{source}: no such file")
    if not path.is_file():
        raise InputError(f"{source}: not a regular file")
    if path.stat().st_size == 0:
        raise InputError(f"{source}: empty file (0 bytes)")
    # "file:" so that FFmpeg never reads a protocol (concat:, subfile,, pipe:) into a name.
    return f"file:{path.resolve()}", {}


def _describe(exc: BaseException) -> str:
    text = str(exc).split(": '", 1)[0]
    return text.removeprefix("[Errno ").split("] ", 1)[-1] or type(exc).__name__


class SourceOpenError(InputError):
    """A source that could not be opened, or gave no video (no frame was read)."""


class VideoReader:
    """Frames (and audio packets) of one source. Use as a context manager. Messages show
    the source with its credentials masked."""

    def __init__(self, source: str, *, timeout_s: float = 10.0, keep_audio: bool = False) -> None:
        self.source = mask_source(source)
        target, kwargs = _open_args(source, timeout_s)
        try:
            self.container = av.open(target, mode="r", **kwargs)
        except (av.FFmpegError, OSError) as exc:
            raise SourceOpenError(
                f"{self.source}: cannot open as video ({scrub(_describe(exc), source)})"
            ) from exc
        if not self.container.streams.video:
            self.container.close()
            raise SourceOpenError(f"{self.source}: has no video stream")
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        audio = self.container.streams.audio
        self.audio = audio[0] if keep_audio and audio else None
        ctx = self.video.codec_context
        rate = self.video.average_rate or self.video.guessed_rate or Fraction(25)
        self.info = VideoInfo(
            width=int(ctx.width),
            height=int(ctx.height),
            fps=float(rate),
            frames=int(self.video.frames or 0),
            codec=str(ctx.name),
            has_audio=bool(audio),
        )

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def items(self) -> Iterator[Frame | av.Packet[Any]]:
        """Decoded frames, and (if kept) audio packets, in container order."""
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        index = 0
        try:
            for packet in self.container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        yield packet
                    continue
                for frame in packet.decode():
                    pixels = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                    yield Frame(index=index, pixels=pixels)
                    index += 1
        except av.FFmpegError as exc:
            if index == 0:
                raise SourceOpenError(f"{self.source}: cannot decode ({_describe(exc)})") from exc
            raise StreamError(f"{self.source}: stream broke after {index} frames") from exc

    def frames(self) -> Iterator[Frame]:
        for item in self.items():
            if isinstance(item, Frame):
                yield item


class StreamError(InputError):
    """A source that was playing stopped with an error (network drop, truncated file)."""


class VideoWriter:
    """Encodes RGB frames to a file; copies or re-encodes audio packets of ``reader``."""

    def __init__(
        self,
        path: Path,
        reader: VideoReader,
        *,
        codec: str | None = None,
        crf: int = 23,
        preset: str = "veryfast",
    ) -> None:
        suffix = path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise InputError(
                f"{path}: unsupported output type; use one of {', '.join(sorted(VIDEO_SUFFIXES))}"
            )
        self.path = path
        name = codec or _ENCODER.get(suffix, "libx264")
        if name not in av.codecs_available:
            raise InputError(f"video codec {name!r} is not available in this FFmpeg build")
        try:
            self.container = av.open(str(path), mode="w")
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"{path}: cannot write ({_describe(exc)})") from exc
        rate = Fraction(reader.info.fps).limit_denominator(1001)
        stream = self.container.add_stream(name, rate=rate)
        assert isinstance(stream, av.VideoStream)
        self.stream = stream
        self.stream.width = reader.info.width - reader.info.width % 2
        self.stream.height = reader.info.height - reader.info.height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.thread_type = "AUTO"
        if name in ("libx264", "libvpx-vp9"):
            extra = {"preset": preset} if name == "libx264" else {"b": "0", "deadline": "realtime"}
            options: dict[str, object] = {"crf": str(crf), **extra}
            self.stream.options = options
        self._rate = rate
        self._count = 0
        self._audio_in = reader.audio
        self._audio_out: Any = None
        self._resampled: Any = None
        if reader.audio is not None:
            target = _AUDIO_FOR.get(suffix)
            if target is None:
                self._audio_out = self.container.add_stream_from_template(reader.audio)
            else:
                self._audio_out = self.container.add_stream(target, rate=reader.audio.rate)

    def write(self, pixels: RGBImage) -> None:
        h, w = self.stream.height, self.stream.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels[:h, :w]), format="rgb24")
        frame.pts = self._count
        frame.time_base = 1 / self._rate
        self._count += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def write_audio(self, packet: av.Packet[Any]) -> None:
        if self._audio_out is None:
            return
        if self._audio_out.codec_context.name == packet.stream.codec_context.name:
            packet.stream = self._audio_out
            self.container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None
            for out in self._audio_out.encode(frame):
                self.container.mux(out)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        if self._audio_out is not None and self._audio_out.codec_context.is_encoder:
            try:
                for packet in self._audio_out.encode():
                    self.container.mux(packet)
            except av.FFmpegError:
                pass
        self.container.close()


class Prefetch(Generic[T]):
    """Decode on a thread of its own while the caller works on earlier frames (PyAV releases
    the GIL while decoding). With ``drop_oldest`` — for live sources — the newest items are
    kept and the oldest waiting one is dropped (and counted) when the consumer falls behind,
    so latency never grows; without it — for files — nothing is lost and the decoder waits.
    Use as a context manager: the decoder thread is joined before the container is closed."""

    _END = object()

    def __init__(self, items: Iterator[T], maxsize: int = 8, *, drop_oldest: bool) -> None:
        self.dropped = 0
        self._drop = drop_oldest
        self._queue: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, args=(items,), daemon=True)
        self._thread.start()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _put(self, item: object) -> None:
        while True:
            stopping = self._stop.is_set()
            if self._drop or stopping:  # never wait: make room by dropping the oldest
                try:
                    self._queue.put_nowait(item)
                    return
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        self._queue.get_nowait()
                        self.dropped += not stopping
            else:
                with contextlib.suppress(queue.Full):
                    self._queue.put(item, timeout=0.1)
                    return

    def _pump(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if self._stop.is_set():
                    return
                self._put(item)
        except BaseException as exc:  # handed to the consumer, raised there
            self._error = exc
        finally:
            self._put(self._END)

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is self._END:
                if self._error is not None:
                    raise self._error
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop decoding and wait for the decoder thread (a read in progress ends within
        the source's read timeout)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()
