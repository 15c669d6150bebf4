"""The vector index behind 1:N search: one small interface, two engines.

* :class:`ExactIndex` — brute-force inner products in float32, in blocks of rows so that
  memory stays bounded. Exact; the default for small galleries.
* :class:`QuantizedIndex` — every vector compressed to 32 bytes by residual quantisation and
  scanned in full with FAISS fast-scan; the best few thousand are re-scored exactly.
  Approximate; used when the gallery is large (:func:`make_index`).

Rows are labelled with a subject id; a subject may have several templates and a search
returns each subject once, with its best score. ``add`` and ``remove`` take effect for the
next search, and ``remove`` deletes: no tombstone keeps a removed vector in memory.
``allowed`` restricts a search to some subjects (those whose consent covers the purpose)
inside the engine, so that a filtered search is as complete as a full one.
Vectors are unit length, so inner product = cosine similarity. Their dimension is the
model's (128 for dlib's ResNet and SFace, 256 for their fusion): an index takes the
dimension of the first vectors added and refuses others.
"""

from __future__ import annotations

import io
import math
import os
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

DIM = 128
EXACT_MAX = 50_000
"""Galleries up to this many templates use exact search; above, the quantized index."""

_BLOCK = 65_536


@dataclass(frozen=True, slots=True)
class Hit:
    label: str
    cosine: float


class VectorIndex(Protocol):
    kind: str

    def add(self, labels: Sequence[str], vectors: NDArray[np.float32]) -> None: ...

    def remove(self, label: str) -> int: ...

    def search(
        self, queries: NDArray[np.float32], k: int, allowed: Collection[str] | None = None
    ) -> list[list[Hit]]: ...

    def __len__(self) -> int: ...

    def to_bytes(self) -> bytes: ...


class _Labels:
    """Row ids <-> labels. Ids are never reused, so a removed row can't come back."""

    def __init__(self) -> None:
        self.by_id: dict[int, str] = {}
        self.ids_of: dict[str, list[int]] = {}
        self.next_id = 0
        self.max_per_label = 0
        self._version = 0
        self._memo: tuple[frozenset[str], int, NDArray[np.bool_]] | None = None

    def assign(self, labels: Sequence[str]) -> NDArray[np.int64]:
        out = np.arange(self.next_id, self.next_id + len(labels), dtype=np.int64)
        for i, lab in zip(out.tolist(), labels, strict=True):
            self.by_id[i] = lab
            rows = self.ids_of.setdefault(lab, [])
            rows.append(i)
            self.max_per_label = max(self.max_per_label, len(rows))
        self.next_id += len(labels)
        self._version += 1
        return out

    def drop(self, label: str) -> list[int]:
        ids = self.ids_of.pop(label, [])
        for i in ids:
            del self.by_id[i]
        if ids and len(ids) == self.max_per_label:
            self.max_per_label = max((len(v) for v in self.ids_of.values()), default=0)
        self._version += 1
        return ids

    def mask_for(self, labels: Collection[str]) -> NDArray[np.bool_]:
        """A membership table indexed by row id: True for the rows of ``labels``; read-only.

        The last table made for a frozenset is kept while no row changes: the eligible
        subjects of a purpose come as the same frozenset search after search
        (:mod:`visage.gallery.eligibility`), and building the table walks every label.
        """
        memo = self._memo
        if memo is not None and memo[0] is labels and memo[1] == self._version:
            return memo[2]
        mask = np.zeros(self.next_id, bool)
        ids = [i for lab in labels for i in self.ids_of.get(lab, ())]
        mask[np.asarray(ids, np.int64)] = True
        if isinstance(labels, frozenset):
            self._memo = (labels, self._version, mask)
        return mask


class _Rows:
    """The float vectors and row ids, in row order, in a buffer that grows by doubling:
    adding one template to a million copies nothing; removing compacts (really deletes)."""

    def __init__(self) -> None:
        self._ids = np.empty(0, np.int64)
        self._vectors = np.empty((0, DIM), np.float32)
        self.n = 0

    @property
    def ids(self) -> NDArray[np.int64]:
        return self._ids[: self.n]

    @property
    def dim(self) -> int | None:
        """The vectors' dimension, once there are any."""
        return int(self._vectors.shape[1]) if self.n else None

    @property
    def vectors(self) -> NDArray[np.float32]:
        return self._vectors[: self.n]

    def append(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        need = self.n + len(ids)
        if need > len(self._ids):
            cap = max(need, 2 * len(self._ids)) if self.n else need
            grown_ids = np.empty(cap, np.int64)
            grown_vectors = np.empty((cap, vectors.shape[1]), np.float32)
            if self.n:
                grown_ids[: self.n], grown_vectors[: self.n] = self.ids, self.vectors
            self._ids, self._vectors = grown_ids, grown_vectors
        self._ids[self.n : need], self._vectors[self.n : need] = ids, vectors
        self.n = need

    def delete(self, rows: NDArray[np.intp]) -> None:
        keep = np.ones(self.n, bool)
        keep[rows] = False
        self._ids, self._vectors = self.ids[keep], self.vectors[keep]
        self.n = len(self._ids)


def _check(
    vectors: NDArray[np.float32], n: int | None = None, dim: int | None = None
) -> NDArray[np.float32]:
    """``dim``: the index's dimension (None while it is empty: any)."""
    wrong_dim = vectors.ndim == 2 and dim is not None and vectors.shape[1] != dim
    if vectors.ndim != 2 or wrong_dim or (n is not None and len(vectors) != n):
        raise ValueError(
            f"expected {n if n is not None else 'N'}x{dim or DIM} vectors, got {vectors.shape}"
        )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _best_per_label(
    labels: _Labels, ids: NDArray[np.int64], sims: NDArray[np.float32], k: int
) -> list[Hit]:
    best: dict[str, float] = {}
    for i, s in zip(ids.tolist(), sims.tolist(), strict=True):
        lab = labels.by_id.get(i)
        if lab is not None and lab not in best:
            best[lab] = s
            if len(best) == k:
                break
    return [Hit(lab, cos) for lab, cos in best.items()]


def _top(sims: NDArray[np.float32], want: int) -> NDArray[np.intp]:
    """Positions of the ``want`` largest values, best first."""
    if len(sims) > want:
        part = np.argpartition(-sims, want - 1)[:want]
        return part[np.argsort(-sims[part])]
    return np.argsort(-sims)


class ExactIndex:
    """Exact inner-product search over all rows, in blocks."""

    kind = "exact"

    def __init__(self) -> None:
        self._labels = _Labels()
        self._rows = _Rows()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self._rows.n

    def add(self, labels: Sequence[str], vectors: NDArray[np.float32]) -> None:
        with self._lock:
            vectors = _check(vectors, len(labels), self._rows.dim)
            self._rows.append(self._labels.assign(labels), vectors)

    def remove(self, label: str) -> int:
        with self._lock:
            gone = self._labels.drop(label)
            if gone:
                self._rows.delete(np.flatnonzero(np.isin(self._rows.ids, gone)))
            return len(gone)

    def search(
        self, queries: NDArray[np.float32], k: int, allowed: Collection[str] | None = None
    ) -> list[list[Hit]]:
        with self._lock:
            queries = _check(queries, dim=self._rows.dim)
            ids, matrix = self._rows.ids, self._rows.vectors
            if allowed is not None:
                mask = self._labels.mask_for(allowed)[ids]
                ids, matrix = ids[mask], matrix[mask]
            if len(ids) == 0:
                return [[] for _ in queries]
            # Enough candidates to find k distinct labels even when some have many rows.
            want = min(len(ids), k * max(self._labels.max_per_label, 1))
            top_sims = np.empty((len(queries), 0), np.float32)
            top_ids = np.empty((len(queries), 0), np.int64)
            for start in range(0, len(ids), _BLOCK):
                block = queries @ matrix[start : start + _BLOCK].T
                sims = np.concatenate([top_sims, block], axis=1)
                cand = np.concatenate(
                    [top_ids, np.broadcast_to(ids[start : start + _BLOCK], block.shape)], axis=1
                )
                if sims.shape[1] > want:
                    part = np.argpartition(-sims, want - 1, axis=1)[:, :want]
                    sims = np.take_along_axis(sims, part, axis=1)
                    cand = np.take_along_axis(cand, part, axis=1)
                top_sims, top_ids = sims, cand
            order = np.argsort(-top_sims, axis=1)
            return [
                _best_per_label(self._labels, top_ids[q, order[q]], top_sims[q, order[q]], k)
                for q in range(len(queries))
            ]

    def to_bytes(self) -> bytes:
        with self._lock:
            buf = io.BytesIO()
            labels = np.asarray([self._labels.by_id[int(i)] for i in self._rows.ids], "U32")
            np.savez(buf, kind=np.asarray("exact"), labels=labels, matrix=self._rows.vectors)
            return buf.getvalue()


def _delete_codes(engine: Any, rows: NDArray[np.intp]) -> None:
    """Delete rows from a FAISS fast-scan index, and zero the slots freed at the end.

    ``remove_ids`` shifts the later codes down but leaves the old bytes in the freed slots
    of the last block, and ``add`` packs new 4-bit codes into those slots without clearing
    them first: a vector added after a removal came out corrupted and was not found (faiss
    1.15; caught by ``test_remove_and_add_take_effect_at_once``). Zeroing the freed slots
    fixes that, and also leaves no stale code of a removed vector there.
    """
    import faiss

    engine.remove_ids(faiss.IDSelectorBatch(rows.astype(np.int64)))
    packer = engine.get_CodePacker()
    blocks = faiss.rev_swig_ptr(engine.codes.get(), engine.codes.size())
    blocks = blocks.reshape(-1, packer.block_size)
    blank = np.zeros(packer.code_size, np.uint8)
    for slot in range(engine.ntotal, engine.ntotal2):
        block = slot // packer.nvec
        packer.pack_1(blank, slot % packer.nvec, blocks[block : block + 1])


@contextmanager
def _faiss_threads(n: int) -> Iterator[None]:
    """OpenMP threads for FAISS inside the block, one thread outside it.

    Training and encoding use every core. A single-query search runs best on one thread:
    FAISS parallelises over queries, so more threads only add wake-up jitter (measured).
    """
    import faiss

    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(1)


class QuantizedIndex:
    """Residual quantisation (``RQ64x4fs``) scanned in full, then exact re-scoring.

    Vectors are centred on the gallery mean (this leaves the cosine ranking of a query
    unchanged: every score shifts by the same ``<mean, query>``) and encoded by a residual
    quantiser of 64 codebooks of 16 entries, 32 bytes a vector. A query is scored against
    every code with FAISS's SIMD lookup tables (fast-scan: about 2 ms per million on one
    core) and the ``candidates`` best are re-scored exactly from the float vectors.

    Why this design, measured on the synthetic gallery at 1M (see ``docs/performance.md``):
    face embeddings spread over ~100 effective dimensions, so partitioning indexes miss
    (IVF1024 nprobe 64: recall 0.43; HNSW: 0.77 at 100,000) and only a full scan is safe.
    Product quantisation at the same 32 bytes needed twice the candidates for recall 0.99
    (PQ64x4fs); at 64 bytes (PQ128x4fs) the scan alone took 4.2 ms. Residual codebooks
    cost ~70 s of encoding a million on 2 cores, so the trained index is saved with the
    codes (:meth:`to_bytes`) and never re-encoded on load.

    Removal deletes the rows from the codes and the float vectors at once.
    """

    kind = "quantized"
    min_train = 1_024
    """Fewer vectors than this can't train 64 codebooks of 16 entries well: use exact."""

    def __init__(
        self,
        candidates: int = 2048,
        factory: str = "RQ64x4fs",
        train_size: int = 16_384,
        build_threads: int = 0,
    ) -> None:
        self.candidates, self.factory, self.train_size = candidates, factory, train_size
        self.build_threads = build_threads or os.cpu_count() or 1
        self._centre: NDArray[np.float32] | None = None
        self._labels = _Labels()
        self._rows = _Rows()
        self._engine: Any = None
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self._rows.n

    def _train(self, vectors: NDArray[np.float32]) -> None:
        import faiss

        if len(vectors) < self.min_train:
            raise ValueError(
                f"the quantized index trains on at least {self.min_train} vectors, "
                f"got {len(vectors)}"
            )
        self._centre = vectors.mean(axis=0).astype(np.float32)
        rng = np.random.default_rng(0)
        take = min(len(vectors), self.train_size)
        sample = vectors[rng.choice(len(vectors), take, replace=False)] - self._centre
        engine = faiss.index_factory(vectors.shape[1], self.factory, faiss.METRIC_INNER_PRODUCT)
        with _faiss_threads(self.build_threads):
            engine.train(sample)
        self._engine = engine

    def add(self, labels: Sequence[str], vectors: NDArray[np.float32]) -> None:
        with self._lock:
            vectors = _check(vectors, len(labels), self._rows.dim)
            if self._engine is None:
                self._train(vectors)
            assert self._centre is not None
            with _faiss_threads(self.build_threads):
                self._engine.add(vectors - self._centre)
            self._rows.append(self._labels.assign(labels), vectors)

    def remove(self, label: str) -> int:
        with self._lock:
            gone = self._labels.drop(label)
            if gone:
                rows = np.flatnonzero(np.isin(self._rows.ids, gone))
                _delete_codes(self._engine, rows)
                self._rows.delete(rows)
            return len(gone)

    def search(
        self, queries: NDArray[np.float32], k: int, allowed: Collection[str] | None = None
    ) -> list[list[Hit]]:
        with self._lock:
            queries = _check(queries, dim=self._rows.dim)
            n = len(self)
            if n == 0:
                return [[] for _ in queries]
            per = k * max(self._labels.max_per_label, 1)
            want = self.candidates + per
            eligible = None
            if allowed is not None:
                eligible = self._labels.mask_for(allowed)
                count = int(eligible.sum())
                if count <= EXACT_MAX:  # a small eligible set: exact over it
                    return self._exact(queries, np.flatnonzero(eligible[self._rows.ids]), k)
                # Scale the candidates so that about as many eligible ones come back.
                want = math.ceil(want * n / count)
            _, found = self._engine.search(queries, min(n, want))
            results = []
            for query, rows in zip(queries, found, strict=True):
                rows = rows[rows >= 0]
                if eligible is not None:
                    rows = rows[eligible[self._rows.ids[rows]]]
                sims = self._rows.vectors[rows] @ query
                best = _top(sims, per)
                results.append(
                    _best_per_label(self._labels, self._rows.ids[rows[best]], sims[best], k)
                )
            return results

    def _exact(
        self, queries: NDArray[np.float32], rows: NDArray[np.intp], k: int
    ) -> list[list[Hit]]:
        if len(rows) == 0:
            return [[] for _ in queries]
        sims = queries @ self._rows.vectors[rows].T
        per = k * max(self._labels.max_per_label, 1)
        out = []
        for q in range(len(queries)):
            best = _top(sims[q], per)
            out.append(_best_per_label(self._labels, self._rows.ids[rows[best]], sims[q, best], k))
        return out

    def to_bytes(self) -> bytes:
        """Labels, float vectors, centre and the trained engine with its codes."""
        import faiss

        with self._lock:
            if self._engine is None:  # never filled: nothing trained to keep
                return ExactIndex().to_bytes()
            buf = io.BytesIO()
            labels = np.asarray([self._labels.by_id[int(i)] for i in self._rows.ids], "U32")
            np.savez(
                buf,
                kind=np.asarray("quantized"),
                labels=labels,
                matrix=self._rows.vectors,
                centre=np.asarray(self._centre, np.float32),
                engine=faiss.serialize_index(self._engine),
                params=np.asarray([self.candidates, self.train_size]),
                factory=np.asarray(self.factory),
            )
            return buf.getvalue()

    @classmethod
    def from_arrays(cls, z: Any, build_threads: int = 0) -> QuantizedIndex:
        import faiss

        candidates, train_size = (int(v) for v in z["params"])
        index = cls(candidates, str(z["factory"]), train_size, build_threads)
        with _faiss_threads(index.build_threads):  # leaves searches on one thread
            engine = faiss.deserialize_index(z["engine"])
        labels = [str(s) for s in z["labels"]]
        if engine.ntotal != len(labels):
            raise ValueError("corrupt index: codes and labels differ in number")
        index._engine, index._centre = engine, z["centre"].astype(np.float32)
        index._rows.append(index._labels.assign(labels), z["matrix"])
        return index


def from_bytes(data: bytes, build_threads: int = 0) -> VectorIndex:
    """Rebuild an index saved with ``to_bytes``."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        kind = str(z["kind"])
        if kind == "exact":
            exact = ExactIndex()
            exact.add([str(s) for s in z["labels"]], z["matrix"])
            return exact
        if kind == "quantized":
            return QuantizedIndex.from_arrays(z, build_threads)
    raise ValueError(f"unknown index kind {kind!r}")


def make_index(
    labels: Sequence[str],
    vectors: NDArray[np.float32],
    exact_max: int = EXACT_MAX,
    build_threads: int = 0,
) -> VectorIndex:
    """The right engine for a gallery of this size, filled with ``vectors``."""
    quantized = len(labels) > max(exact_max, QuantizedIndex.min_train - 1)
    index: VectorIndex = QuantizedIndex(build_threads=build_threads) if quantized else ExactIndex()
    if len(labels):
        index.add(labels, vectors)
    return index
