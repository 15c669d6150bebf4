"""Start-up: ``visage --help`` against ``python -c "import typer"``, side by side.

Each command runs as a fresh process, alternately, ``--runs`` times; the medians are
compared. The goal (issue 14): ``visage --help`` within 2x of importing Typer, the
framework it is built on. Also shows what ``visage --help`` imports.

    python bench/startup.py [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit

PY = sys.executable
VISAGE = str(Path(PY).with_name("visage"))


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one fresh process. CPU time is the
    steadier figure on a loaded machine; wall-clock is what a user waits."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with status {proc.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per command")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # A data dir that does not exist: --help must not need (nor create) one.
        env = os.environ | {"VISAGE_HOME": str(Path(tmp) / "none"), "COLUMNS": "100"}
        commands = {
            "python": [PY, "-c", "pass"],
            "import typer": [PY, "-c", "import typer"],
            "visage --help": [VISAGE, "--help"],
            "visage subject list --help": [VISAGE, "subject", "list", "--help"],
        }
        for cmd in commands.values():  # warm the OS file cache, not timed
            run(cmd, env)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so that load on the machine hits all alike
            for name, cmd in commands.items():
                w, c = run(cmd, env)
                walls[name].append(w)
                cpus[name].append(c)
    wall = {name: statistics.median(t) for name, t in walls.items()}
    cpu = {name: statistics.median(t) for name, t in cpus.items()}
    ratio = wall["visage --help"] / wall["import typer"]
    cpu_ratio = cpu["visage --help"] / cpu["import typer"]
    result = {
        "runs": args.runs,
        "median_wall_s": {k: round(v, 4) for k, v in wall.items()},
        "median_cpu_s": {k: round(v, 4) for k, v in cpu.items()},
        "ratio_help_vs_typer": round(ratio, 2),
        "cpu_ratio_help_vs_typer": round(cpu_ratio, 2),
        "goal": 2.0,
        "met": ratio <= 2.0,
    }
    rows = [
        (name, f"{wall[name] * 1000:.0f} ms wall, {cpu[name] * 1000:.0f} ms CPU")
        for name in commands
    ]
    rows.append(("ratio (wall)", f"{ratio:.2f}x visage --help / import typer (goal <= 2x)"))
    rows.append(("ratio (CPU)", f"{cpu_ratio:.2f}x"))
    rows.append(("runs", f"{args.runs} fresh processes each, medians"))
    emit(result, args.json, rows)


if __name__ == "__main__":
    main()
