"""Synthetic embeddings for search benchmarks, shaped like real ones.

Real templates are not uniform on the sphere: all faces share a large common component,
people differ along a few dozen directions, and photos of one person vary a little. We
model an embedding as ``normalise(a*m + b*u_person + c*w_photo)`` where ``m`` is a fixed
unit vector and ``u``, ``w`` are Gaussian with variance decaying along a random basis
(spectrum ``exp(-i/tau)``: tau 48 between people, 8 between photos of one person). The
constants reproduce what we measured on the 4,950 pairs of ``lfw10/pairs.csv`` with the
Visage embedder: impostor cosine mean 0.847 (sd 0.028),
genuine cosine mean 0.952 (sd 0.016). ``python -m visage.gallery.synthetic`` prints the
same statistics for the generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

DIM = 128
IMPOSTOR_COS = 0.8467
GENUINE_COS = 0.9519
TAU_PEOPLE = 48.0
TAU_PHOTOS = 8.0
"""Spectrum decays, fitted so that the generator's cosine spreads match lfw10's."""


@dataclass(frozen=True)
class SyntheticGallery:
    labels: list[str]
    vectors: NDArray[np.float32]
    queries: NDArray[np.float32]
    query_labels: list[str]


def _normalise(x: NDArray[np.float32]) -> NDArray[np.float32]:
    out: NDArray[np.float32] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


class EmbeddingModel:
    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        basis, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
        self.mean = basis[:, 0].astype(np.float32)
        rest = basis[:, 1:]

        def mix(tau: float) -> NDArray[np.float32]:
            spectrum = np.exp(-np.arange(DIM - 1) / tau)
            spectrum /= spectrum.sum()  # unit expected squared norm
            return (rest * np.sqrt(spectrum)).T.astype(np.float32)  # (127, 128)

        self.people_mix = mix(TAU_PEOPLE)
        self.photo_mix = mix(TAU_PHOTOS)
        self.a = np.sqrt(IMPOSTOR_COS)
        self.b = np.sqrt(GENUINE_COS - IMPOSTOR_COS)
        self.c = np.sqrt(1.0 - GENUINE_COS)

    def people(self, n: int) -> NDArray[np.float32]:
        z = self.rng.standard_normal((n, DIM - 1), dtype=np.float32)
        return z @ self.people_mix

    def photos(self, people: NDArray[np.float32]) -> NDArray[np.float32]:
        noise = self.rng.standard_normal((len(people), DIM - 1), dtype=np.float32) @ self.photo_mix
        x = self.a * self.mean + self.b * people + self.c * noise
        return _normalise(x.astype(np.float32))


def synthetic_gallery(
    n: int, queries: int, seed: int = 0, chunk: int = 200_000
) -> SyntheticGallery:
    """``n`` people with one template each; ``queries`` new photos of enrolled people."""
    model = EmbeddingModel(seed)
    labels = [f"{i:032x}" for i in range(n)]
    vectors = np.empty((n, DIM), np.float32)
    centres = np.empty((n, DIM), np.float32)
    for start in range(0, n, chunk):
        people = model.people(min(chunk, n - start))
        centres[start : start + len(people)] = people
        vectors[start : start + len(people)] = model.photos(people)
    who = model.rng.choice(n, size=queries, replace=queries > n)
    return SyntheticGallery(labels, vectors, model.photos(centres[who]), [labels[i] for i in who])


def statistics(pairs: int = 20_000, seed: int = 1) -> dict[str, float]:
    model = EmbeddingModel(seed)
    people = model.people(pairs)
    a, b = model.photos(people), model.photos(people)
    genuine = np.sum(a * b, axis=1)
    impostor = np.sum(a * np.roll(b, 1, axis=0), axis=1)
    return {
        "impostor_mean": float(impostor.mean()),
        "impostor_sd": float(impostor.std()),
        "genuine_mean": float(genuine.mean()),
        "genuine_sd": float(genuine.std()),
    }


if __name__ == "__main__":
    print(statistics())
