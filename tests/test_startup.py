"""Start-up (issue 14): the CLI imports only what the command needs, detect and verify work
before ``visage init``, and a store already at head is opened without Alembic.

The import checks look at ``sys.modules`` of a real process, never at timings (those are in
``bench/startup.py``): a heavy import slipping back into ``visage --help`` fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DATA, database_url_of, make_app
from visage.store.db import DB_FILE, Store, head_revision, open_store

MODEL_RUNTIME = {"onnxruntime", "onnx", "cv2", "faiss", "av", "dlib"}
"""What no command without a model may load."""
HEAVY = MODEL_RUNTIME | {
    "sqlalchemy",
    "alembic",
    "numpy",
    "PIL",
    "matplotlib",
    "fastapi",
    "starlette",
    "uvicorn",
    "paho",
    "pydantic",
    "pydantic_settings",
    "cryptography",
    "rich",  # as costly to import as Typer: the consoles are made when first printed to
}
"""What ``visage --help`` may not load: none of it is needed to list the commands."""

_PROBE = """
import json, sys
sys.argv = ["visage", *json.loads(sys.argv[1])]
from visage.cli import main
try:
    main()
except SystemExit:
    pass
finally:
    with open({modules!r}, "w") as fh:
        json.dump(sorted({{m.split(".")[0] for m in sys.modules}}), fh)
"""


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
    env["VISAGE_HOME"] = str(home)
    env.update(extra)
    return env


def imported_by(tmp_path: Path, home: Path, *args: str, **env: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after ``visage ARGS`` ran in a fresh process."""
    modules = tmp_path / "modules.json"
    run = subprocess.run(
        [sys.executable, "-c", _PROBE.format(modules=str(modules)), json.dumps(list(args))],
        capture_output=True,
        text=True,
        env=_env(home, **env),
        timeout=120,
    )
    assert modules.is_file(), run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    return set(json.loads(modules.read_text()))


def test_help_imports_no_heavy_module(tmp_path: Path) -> None:
    home = tmp_path / "no-home"
    loaded = imported_by(tmp_path, home, "--help")
    assert "typer" in loaded  # the probe really ran the command
    assert not loaded & HEAVY, f"visage --help imports {sorted(loaded & HEAVY)}"
    assert not home.exists()


def test_subcommand_help_imports_no_model_runtime(tmp_path: Path) -> None:
    loaded = imported_by(tmp_path, tmp_path / "no-home", "subject", "list", "--help")
    assert not loaded & (HEAVY - {"pydantic", "rich"}), sorted(loaded & HEAVY)


def test_store_commands_load_no_model_runtime(tmp_path: Path) -> None:
    """``subject list`` and ``audit verify`` on a data dir: the store, no model."""
    home = tmp_path / "home"
    make_app(home, dpia=False).close()
    env = {}
    if (url := database_url_of(home)) is not None:
        env["VISAGE_DATABASE_URL"] = url
    for args in (("subject", "list", "--json"), ("audit", "verify", "--json")):
        loaded = imported_by(tmp_path, home, *args, **env)
        assert "sqlalchemy" in loaded, args  # it did open the store
        assert not loaded & MODEL_RUNTIME, f"visage {' '.join(args)}: {loaded & MODEL_RUNTIME}"


NOTICE = "no data directory: this run is not audited (run visage init to audit)"


def test_detect_and_verify_work_before_init_and_create_no_data_dir(tmp_path: Path) -> None:
    home, cache = tmp_path / "never-initialised", tmp_path / "cache"
    env = _env(home, VISAGE_CACHE_DIR=str(cache))
    people = DATA / "lfw10" / "Ariel_Sharon"
    visage = [sys.executable, "-m", "visage"]

    detect = subprocess.run(
        [*visage, "detect", str(people / "Ariel_Sharon_0001.jpg"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert detect.returncode == 0, detect.stderr
    assert len(json.loads(detect.stdout)["faces"]) == 1
    assert detect.stderr.strip() == f"visage: {NOTICE}"

    verify = subprocess.run(
        [
            *visage,
            "verify",
            str(people / "Ariel_Sharon_0001.jpg"),
            str(people / "Ariel_Sharon_0002.jpg"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["same"] is True
    assert NOTICE in verify.stderr

    assert not home.exists(), "a command before init created the data dir"
    # The prepared model graphs (detector, embedder) went to the cache, and nothing else.
    cached = sorted(p.name for p in cache.iterdir())
    assert [n.split("-")[0] for n in cached] == ["centerface", "dlib"], cached
    assert all(n.endswith(".onnx") for n in cached)


def test_detect_in_an_initialised_data_dir_is_audited(tmp_path: Path) -> None:
    from visage.usecases.audit_log import entries
    from visage.usecases.faces import detect

    core = make_app(tmp_path / "home", dpia=False)
    try:
        assert core.initialised
        before = len(entries(core))
        detect(core, DATA / "lfw10" / "Ariel_Sharon" / "Ariel_Sharon_0001.jpg")
        assert [e.operation for e in entries(core)[before:]] == ["detect"]
    finally:
        core.close()


def test_store_at_head_opens_without_alembic(tmp_path: Path) -> None:
    open_store(tmp_path, create=True).close()  # creates and migrates
    store = Store(tmp_path / DB_FILE)
    try:
        assert store.revision() == head_revision()
        assert store.migrate() is False  # nothing to do: Alembic was not run
    finally:
        store.close()
    # And in a fresh process, opening it does not even import Alembic.
    probe = (
        "import sys; from pathlib import Path; from visage.store.db import open_store; "
        f"open_store(Path({str(tmp_path)!r}), create=False).close(); "
        "print('alembic' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr
