"""Load test: N concurrent clients call identify against a running `visage serve`.

Starts a server on 127.0.0.1 with a fresh data dir (everyone in people/ enrolled, a DPIA
reference recorded), then N client threads post the scene images for DURATION seconds.
Prints throughput, p50/p95/p99 latency, errors (must be 0) and the server's resident memory
before and after.

    python bench/load.py [--clients 4] [--duration 60] [--json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import data_dir, emit

PORT = 8799
PURPOSE = "access-control"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def visage(home: Path, *args: str) -> str:
    env = {**os.environ, "VISAGE_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-m", "visage", *args], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


def prepare(home: Path, data: Path) -> str:
    import json

    visage(home, "init")
    visage(home, "profile", "set", "--dpia-ref", "DPIA-LOADTEST")
    for folder in sorted(p for p in (data / "people").iterdir() if p.is_dir()):
        sid = json.loads(
            visage(
                home,
                "subject",
                "add",
                folder.name,
                "--consent-ref",
                f"form-{folder.name}",
                "--purpose",
                PURPOSE,
                "--json",
            )
        )["id"]
        visage(home, "enroll", sid, *map(str, sorted(folder.iterdir())))
    made = visage(home, "keys", "create", "--role", "operator", "--purpose", PURPOSE, "--json")
    return str(json.loads(made)["key"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    data = data_dir()
    images = [p.read_bytes() for p in sorted((data / "scenes").iterdir())]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        key = prepare(home, data)
        env = {**os.environ, "VISAGE_HOME": str(home)}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "visage",
                "serve",
                "--port",
                str(PORT),
                "--identify-per-minute",
                "1000000",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{PORT}"
            for _ in range(200):
                try:
                    if httpx.get(f"{base}/readyz", timeout=30).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
            before = rss_mb(server.pid)
            latencies: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            stop = time.monotonic() + args.duration

            def client(n: int) -> None:
                with httpx.Client(base_url=base, timeout=60, headers={"X-API-Key": key}) as http:
                    i = n
                    while time.monotonic() < stop:
                        t = time.perf_counter()
                        r = http.post(
                            f"/v1/identify?purpose={PURPOSE}", content=images[i % len(images)]
                        )
                        elapsed = time.perf_counter() - t
                        with lock:
                            latencies.append(elapsed)
                            if r.status_code != 200:
                                errors.append(f"{r.status_code}: {r.text[:100]}")
                        i += 1

            started = time.monotonic()
            threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - started
            after = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    ms = np.asarray(latencies) * 1000
    result: dict[str, Any] = {
        "clients": args.clients,
        "seconds": round(wall, 1),
        "requests": len(latencies),
        "throughput_rps": round(len(latencies) / wall, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "errors": len(errors),
        "error_samples": errors[:3],
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
    }
    emit(result, args.json, [(k, str(v)) for k, v in result.items()])
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
