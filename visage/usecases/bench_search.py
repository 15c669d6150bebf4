"""1:N search benchmark on a synthetic gallery (see :mod:`visage.gallery.synthetic`).

Builds the index :func:`visage.gallery.index.make_index` would choose for that size, then
times single-query searches (top 1) and compares each answer with exact search.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel

from visage.gallery.index import ExactIndex, QuantizedIndex, make_index
from visage.gallery.synthetic import synthetic_gallery


class SearchBench(BaseModel):
    gallery: int
    queries: int
    index: str
    build_s: float
    p50_ms: float
    p99_ms: float
    recall_at_1: float
    exact_p50_ms: float
    memory_mb: float
    params: dict[str, int]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_search(
    gallery: int,
    queries: int,
    seed: int = 0,
    exact_sample: int = 100,
    step: Callable[[str], None] | None = None,
) -> SearchBench:
    say = step or (lambda _msg: None)
    say(f"generating {gallery:,} synthetic templates")
    data = synthetic_gallery(gallery, queries, seed)
    say("building the index")
    rss = _rss_mb()
    t0 = time.perf_counter()
    index = make_index(data.labels, data.vectors)
    build_s = time.perf_counter() - t0
    memory = max(_rss_mb() - rss, 0.0)
    say(f"timing {queries} queries")
    latencies = []
    answers = []
    for q in data.queries:
        t = time.perf_counter()
        hits = index.search(q[None, :], 1)[0]
        latencies.append(time.perf_counter() - t)
        answers.append(hits[0].label if hits else None)
    say("exact search for reference")
    if isinstance(index, ExactIndex):
        exact = index
    else:
        exact = ExactIndex()
        exact.add(data.labels, data.vectors)
    truth = [h[0].label if h else None for h in exact.search(data.queries, 1)]
    exact_times = []
    for q in data.queries[:exact_sample]:
        t = time.perf_counter()
        exact.search(q[None, :], 1)
        exact_times.append(time.perf_counter() - t)
    recall = float(np.mean([a == b for a, b in zip(answers, truth, strict=True)]))
    params = (
        {"candidates": index.candidates, "train_size": index.train_size}
        if isinstance(index, QuantizedIndex)
        else {}
    )
    ms = np.asarray(latencies) * 1000
    return SearchBench(
        gallery=gallery,
        queries=queries,
        index=index.kind,
        build_s=round(build_s, 2),
        p50_ms=round(float(np.percentile(ms, 50)), 3),
        p99_ms=round(float(np.percentile(ms, 99)), 3),
        recall_at_1=round(recall, 4),
        exact_p50_ms=round(float(np.median(exact_times)) * 1000, 3),
        memory_mb=round(memory, 1),
        params=params,
    )
