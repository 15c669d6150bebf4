"""The vector index behind 1:N search. One small interface; exact search for now.

Rows carry a label (the subject id). Vectors are unit length, so the inner product is the
cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Hit:
    label: str
    cosine: float


class VectorIndex(Protocol):
    def add(self, labels: list[str], vectors: NDArray[np.float32]) -> None: ...

    def remove(self, label: str) -> int: ...

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]: ...

    def __len__(self) -> int: ...


class ExactIndex:
    """Brute-force inner product; best label per subject (max over their templates)."""

    def __init__(self, dim: int = 128) -> None:
        self.dim = dim
        self._labels: list[str] = []
        self._matrix: NDArray[np.float32] = np.empty((0, dim), np.float32)

    def __len__(self) -> int:
        return len(self._labels)

    def add(self, labels: list[str], vectors: NDArray[np.float32]) -> None:
        if vectors.shape != (len(labels), self.dim):
            raise ValueError(f"expected {len(labels)}x{self.dim} vectors, got {vectors.shape}")
        self._labels.extend(labels)
        self._matrix = np.vstack([self._matrix, vectors.astype(np.float32)])

    def remove(self, label: str) -> int:
        keep = [i for i, lab in enumerate(self._labels) if lab != label]
        removed = len(self._labels) - len(keep)
        self._labels = [self._labels[i] for i in keep]
        self._matrix = self._matrix[keep]
        return removed

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be Nx{self.dim}")
        if not self._labels:
            return [[] for _ in range(len(queries))]
        sims = queries.astype(np.float32) @ self._matrix.T
        results: list[list[Hit]] = []
        for row in sims:
            best: dict[str, float] = {}
            for j in np.argsort(-row):
                label = self._labels[int(j)]
                if label not in best:
                    best[label] = float(row[j])
                    if len(best) == k:
                        break
            results.append([Hit(lab, cos) for lab, cos in best.items()])
        return results
