"""Scale-out figures (issue 15): identify throughput with 1 and 2 replicas, store
operation latency on SQLite and PostgreSQL, and batch anonymisation locally vs on Ray.

    python bench/scale.py replicas [--requests 60] [--clients 4] [--database-url URL] [--json]
    python bench/scale.py store [--ops 200] [--database-url URL] [--json]
    python bench/scale.py anonymize [--files 4] [--seconds 3] [--json]

``replicas`` starts real ``visage serve`` processes on one PostgreSQL database and one data
dir (the layout of docs/deployment.md), enrols the people of ../shared/faces, and times
``--requests`` identify calls of ``--clients`` concurrent clients against one replica, then
against two (requests alternating). Both replicas run on this machine: the figure says how
far one machine's cores are used, not how a cluster of machines scales.

``anonymize`` times ``visage anonymize IN_DIR OUT_DIR`` over ``--files`` copies of the
Hamilton clip: in one process, with 2 local worker processes, and on a local Ray instance
(``ray.init(num_cpus=<cores>)``), and checks that every run wrote the same bytes.

``store`` times the store's own operations (no model): creating a subject with its consent,
adding a sealed template, appending an audit entry, reading the gallery version (what every
search does first) and the eligibility of a purpose, on SQLite and on PostgreSQL.

Without ``--database-url`` a PostgreSQL server is started for the run (tests/pg.py: Debian's
``postgresql`` package).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import REPO, data_dir, emit

sys.path.insert(0, str(REPO))

from visage.config import Settings
from visage.core import Visage
from visage.gallery import repository as repo
from visage.governance.audit import Actor
from visage.governance.audit_ops import DetectAudit
from visage.usecases.setup import init
from visage.usecases.subjects import add_subject, make_consent

PURPOSE = "bench"


def database_url(given: str | None) -> str:
    if given:
        return given
    from tests.pg import pg_server

    return pg_server().database("bench")


# -- store latency --------------------------------------------------------------------------


def _percentiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "median_ms": round(statistics.median(times) * 1000, 3),
        "p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000, 3),
    }


def store_latency(home: Path, url: str | None, ops: int) -> dict[str, dict[str, float]]:
    core = Visage(Settings(home=home, database_url=url))
    init(core)
    keys = core.keyring
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, float]] = {}

    def measure(name: str, fn: Callable[[int], Any]) -> None:
        times = []
        for i in range(ops):
            t = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - t)
        out[name] = _percentiles(times)

    subjects: list[str] = []
    measure(
        "add subject + consent",
        lambda i: subjects.append(add_subject(core, f"P{i}", make_consent(f"R-{i}", [PURPOSE])).id),
    )

    def template(i: int) -> None:
        vector = rng.standard_normal(128).astype(np.float32)
        with core.store.session() as session:
            subject = repo.get_subject(session, subjects[i])
            repo.add_template(session, keys, subject, vector, model_id="bench", quality=0.9)

    measure("add template (sealed)", template)

    def audit(i: int) -> None:
        with core.store.session() as session:
            core.audit(session, Actor.local(), DetectAudit(input_sha256="0" * 64, faces=1))

    measure("audit append", audit)

    def version(i: int) -> None:
        with core.store.session() as session:
            repo.gallery_version(session)

    measure("gallery version read", version)

    def eligible(i: int) -> None:
        with core.store.session() as session:
            core.eligibility.get(session, PURPOSE)

    measure("eligibility (cached)", eligible)
    core.close()
    return out


# -- replicas -------------------------------------------------------------------------------


class Server:
    def __init__(self, home: Path, url: str, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
        env.update(VISAGE_HOME=str(home), VISAGE_DATABASE_URL=url)
        env["VISAGE_RATE_LIMIT_PER_MINUTE"] = "100000"
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "visage", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def admin_key(self) -> str:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, ""):
            if "admin API key" in line:
                return line.split()[-1]
        raise SystemExit("the server printed no admin key")

    def wait_ready(self) -> None:
        for _ in range(600):
            if self.proc.poll() is not None:
                raise SystemExit("a server exited at start")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("a server did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def throughput(bases: list[str], key: str, image: bytes, requests: int, clients: int) -> float:
    """Identify calls per second, ``clients`` at a time, spread over ``bases`` in turn."""
    counter = iter(range(requests))
    lock = threading.Lock()
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                r = http.post(
                    f"{bases[i % len(bases)]}/v1/identify?purpose={PURPOSE}",
                    headers={"Authorization": f"Bearer {key}"},
                    files={"image": ("q.jpg", image)},
                )
                if r.status_code != 200:
                    failures.append(r.text[:200])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    took = time.perf_counter() - t
    if failures:
        raise SystemExit(f"{len(failures)} identify calls failed: {failures[0]}")
    return requests / took


def replicas(url: str, requests: int, clients: int) -> dict[str, float]:
    data = data_dir()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        a = Server(home, url, _free_port())
        servers = [a]
        try:
            admin = a.admin_key()
            b = Server(home, url, _free_port())
            servers.append(b)
            a.wait_ready()
            b.wait_ready()
            auth = {"Authorization": f"Bearer {admin}"}
            httpx.patch(f"{a.base}/v1/profile", headers=auth, json={"dpia_ref": "DPIA-BENCH"})

            def new_key(role: str, purposes: list[str]) -> str:
                body = {"role": role, "owner": role, "purposes": purposes}
                r = httpx.post(f"{a.base}/v1/keys", headers=auth, json=body)
                return str(r.json()["key"])

            enroller, operator = new_key("enroller", []), new_key("operator", [PURPOSE])
            head = {"Authorization": f"Bearer {enroller}"}
            for person in sorted((data / "people").iterdir()):
                body = {
                    "name": person.name,
                    "consent": {"reference": person.name, "purposes": [PURPOSE]},
                }
                sid = httpx.post(f"{a.base}/v1/subjects", headers=head, json=body).json()["id"]
                for image in sorted(person.iterdir()):
                    httpx.post(
                        f"{a.base}/v1/subjects/{sid}/templates",
                        headers=head,
                        content=image.read_bytes(),
                        timeout=120,
                    )
            query = (data / "scenes/two_people.jpg").read_bytes()
            throughput([a.base, b.base], operator, query, 4, 2)  # warm both (models, index)
            one = throughput([a.base], operator, query, requests, clients)
            two = throughput([a.base, b.base], operator, query, requests, clients)
        finally:
            for server in servers:
                server.stop()
    return {"one_replica_per_s": round(one, 2), "two_replicas_per_s": round(two, 2)}


# -- batch anonymisation on Ray ---------------------------------------------------------------


def batch(files: int, seconds: float) -> dict[str, Any]:
    """Wall time of ``visage anonymize IN_DIR OUT_DIR`` over ``files`` copies of the first
    ``seconds`` of the Hamilton clip: in this process (models already loaded), with 2 local
    worker processes (their start and model load included), and on a local Ray instance
    with one CPU per core (its start timed apart; actors' start and model load included).
    Every output must be byte-identical to the first run's."""
    import hashlib
    import shutil

    import ray

    from tests.conftest import clip_head
    from visage.usecases.batch import anonymize_folder

    def digests(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.mp4")}

    data = data_dir()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        clip_head(data / "video/hamilton_clip.mp4", src / "clip0.mp4", seconds)
        for i in range(1, files):
            shutil.copy(src / "clip0.mp4", src / f"clip{i}.mp4")
        core = Visage(Settings(home=Path(tmp) / "none"))
        _ = core.analyzer.detector
        out: dict[str, Any] = {"files": files, "seconds_each": seconds, "cpus": cpus}

        def run(name: str, **kwargs: Any) -> None:
            t = time.perf_counter()
            report = anonymize_folder(core, src, Path(tmp) / name, **kwargs)
            out[f"{name}_s"] = round(time.perf_counter() - t, 2)
            if report.anonymised != files:
                raise SystemExit(f"{name}: {report.failed} file(s) failed")
            out["frames"] = sum(i.frames for i in report.items)

        run("local_1_worker")
        run("local_2_workers", workers=2)
        t = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        out["ray_start_s"] = round(time.perf_counter() - t, 2)
        try:
            run("ray", ray="auto")
        finally:
            ray.shutdown()
        first = digests(Path(tmp) / "local_1_worker")
        out["identical"] = all(
            digests(Path(tmp) / name) == first for name in ("local_2_workers", "ray")
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    rep = sub.add_parser("replicas", help="identify throughput with 1 and 2 replicas")
    rep.add_argument("--requests", type=int, default=60)
    rep.add_argument("--clients", type=int, default=4)
    st = sub.add_parser("store", help="store operation latency, SQLite vs PostgreSQL")
    st.add_argument("--ops", type=int, default=200)
    for p in (rep, st):
        p.add_argument("--database-url", help="a PostgreSQL URL (default: start a server)")
    an = sub.add_parser("anonymize", help="batch anonymisation: local workers vs Ray")
    an.add_argument("--files", type=int, default=4)
    an.add_argument("--seconds", type=float, default=3.0, help="of the clip, per file")
    for p in (rep, st, an):
        p.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cpus = os.cpu_count()
    if args.bench == "anonymize":
        result: dict[str, Any] = batch(args.files, args.seconds)
        rows = [
            ("CPUs", str(cpus)),
            ("files", f"{args.files} x {args.seconds} s ({result['frames']} frames in all)"),
            ("local, 1 worker", f"{result['local_1_worker_s']} s"),
            ("local, 2 workers", f"{result['local_2_workers_s']} s"),
            ("Ray (local instance)", f"{result['ray_s']} s (+ {result['ray_start_s']} s start)"),
            ("outputs identical", str(result["identical"])),
        ]
        emit(result, args.json, rows)
        return
    url = database_url(args.database_url)
    if args.bench == "replicas":
        result = {"cpus": cpus, **replicas(url, args.requests, args.clients)}
        rows = [
            ("CPUs", str(cpus)),
            ("identify, 1 replica", f"{result['one_replica_per_s']} /s"),
            ("identify, 2 replicas", f"{result['two_replicas_per_s']} /s"),
        ]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = store_latency(Path(tmp) / "sqlite", None, args.ops)
            pg = store_latency(Path(tmp) / "pg", url, args.ops)
        result = {"ops": args.ops, "sqlite": sqlite, "postgresql": pg}
        rows = [
            (
                name,
                f"SQLite {s['median_ms']} ms (p95 {s['p95_ms']}) | PostgreSQL "
                f"{pg[name]['median_ms']} ms (p95 {pg[name]['p95_ms']})",
            )
            for name, s in sqlite.items()
        ]
    emit(result, args.json, rows)


if __name__ == "__main__":
    main()
