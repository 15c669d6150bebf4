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

from tests.cli_runner import run
from tests.conftest import DATA, database_url_of, make_app
from visage.store.db import DB_FILE, Store, head_revision, open_store
from visage.usecases.subjects import add_subject, make_consent

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
import contextlib, io, json, sys
from visage.cli import main
seen = []
try:
    for args in json.loads(sys.argv[1]):
        sys.argv = ["visage", *args]
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                main()
        except SystemExit:
            pass
        modules = sorted({{m.split(".")[0] for m in sys.modules}})
        seen.append({{"modules": modules, "stdout": out.getvalue()}})
finally:
    with open({seen!r}, "w") as fh:
        json.dump(seen, fh)
"""


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
    env["VISAGE_HOME"] = str(home)
    env.update(extra)
    return env


def imported_in_turn(
    tmp_path: Path, home: Path, commands: list[tuple[str, ...]], **env: str
) -> list[tuple[set[str], str]]:
    """``visage ARGS`` for each ARGS of ``commands``, one after the other in one fresh
    process: after each, the top-level packages in ``sys.modules`` (those of the commands
    before it included) and what it wrote on stdout."""
    seen = tmp_path / "seen.json"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(seen=str(seen)), json.dumps(commands)],
        capture_output=True,
        text=True,
        env=_env(home, **env),
        timeout=120,
    )
    assert seen.is_file(), done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    found = json.loads(seen.read_text())
    assert len(found) == len(commands), done.stderr
    return [(set(f["modules"]), f["stdout"]) for f in found]


def imported_by(tmp_path: Path, home: Path, *args: str, **env: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after ``visage ARGS`` ran in a fresh process."""
    [(modules, _)] = imported_in_turn(tmp_path, home, [args], **env)
    return modules


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
    """``subject list`` and ``audit verify`` on a data dir: the store, no model. Both run in
    one fresh process (each start costs a second or two): what it holds after the second
    includes what the first loaded, so no model runtime there holds for each."""
    home = tmp_path / "home"
    core = make_app(home, dpia=False)
    add_subject(core, "Ada", make_consent("F-Ada", ["door"]))
    core.close()
    env = {}
    if (url := database_url_of(home)) is not None:
        env["VISAGE_DATABASE_URL"] = url
    listed, verified = imported_in_turn(
        tmp_path, home, [("subject", "list", "--json"), ("audit", "verify", "--json")], **env
    )
    assert "sqlalchemy" in listed[0]  # it did open the store
    assert [s["name"] for s in json.loads(listed[1])] == ["Ada"]  # and read it
    report = json.loads(verified[1])  # the chain read from the store (init's entry)
    assert report["ok"] is True and report["entries"] >= 1
    assert not verified[0] & MODEL_RUNTIME, f"store commands: {verified[0] & MODEL_RUNTIME}"


NOTICE = "no data directory: this run is not audited (run visage init to audit)"


def test_detect_and_verify_work_before_init_and_create_no_data_dir(tmp_path: Path) -> None:
    """In this process (:func:`tests.cli_runner.run`: what reaches stdout, stderr, file
    descriptors 1 and 2 and warnings), as the claim is about the commands, not about a
    process's imports; the real executable's contract is held in tests/test_cli.py."""
    home, cache = tmp_path / "never-initialised", tmp_path / "cache"
    people = DATA / "lfw10" / "Ariel_Sharon"

    detect = run(
        home, "detect", str(people / "Ariel_Sharon_0001.jpg"), "--json", VISAGE_CACHE_DIR=str(cache)
    )
    assert detect.returncode == 0, detect.stderr
    assert len(json.loads(detect.stdout)["faces"]) == 1
    assert detect.stderr.strip() == f"visage: {NOTICE}"

    verify = run(
        home,
        "verify",
        str(people / "Ariel_Sharon_0001.jpg"),
        str(people / "Ariel_Sharon_0002.jpg"),
        "--json",
        VISAGE_CACHE_DIR=str(cache),
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
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "False", done.stderr
