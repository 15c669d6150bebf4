"""A real PostgreSQL server for the test session: Debian's ``postgresql`` package, started by
the tests themselves.

One server per test session (:class:`PgServer`), started on first use and stopped at exit;
every :meth:`PgServer.database` call creates a fresh, empty database and returns its
SQLAlchemy URL. ``initdb`` refuses to run as root, so when the tests run as root (CI) the
cluster belongs to the unprivileged ``postgres`` OS user the package creates. The server
listens on a Unix socket only (no TCP port to collide with a neighbour's).

PostgreSQL missing is a failure, not a skip: ``apt-get install -y postgresql`` (``make
test`` does it).

Use from a test::

    from tests.pg import pg_server
    url = pg_server().database()
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from sqlalchemy import inspect, text

from visage.store import DB_FILE
from visage.store.db import Store

INSTALL_HINT = "PostgreSQL is not installed: as root, run apt-get install -y postgresql"
_OWNER = "postgres"
_PORT = 5432  # socket only: the port just names the socket file
_START_TIMEOUT_S = 60.0


def pg_bin() -> Path:
    """The newest installed server's ``bin`` folder (``/usr/lib/postgresql/<v>/bin``)."""

    def version(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return Path(found[-1]).parent


class PgServer:
    """One running PostgreSQL cluster in a temporary folder."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="visage-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._as_root = os.geteuid() == 0
        self.user = _OWNER if self._as_root else pwd.getpwuid(os.geteuid()).pw_name
        self._start()

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", _OWNER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def _start(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if self._as_root:
            try:
                owner = pwd.getpwnam(_OWNER)
            except KeyError:
                raise RuntimeError(f"no '{_OWNER}' OS user: {INSTALL_HINT}") from None
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, owner.pw_uid, owner.pw_gid)
            shutil.chown(self.socket_dir, owner.pw_uid, owner.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        options = (
            f"-k {self.socket_dir} -p {_PORT} -c listen_addresses='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            str(int(_START_TIMEOUT_S)),
            "start",
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def dsn(self, dbname: str) -> str:
        """A libpq connection string to ``dbname`` over the server's socket."""
        return f"host={self.socket_dir} port={_PORT} user={self.user} dbname={dbname}"

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL of ``dbname`` (psycopg 3 over the Unix socket)."""
        return f"postgresql+psycopg://{self.user}@/{dbname}?host={self.socket_dir}&port={_PORT}"

    def database(self, prefix: str = "t") -> str:
        """A new empty database; its SQLAlchemy URL."""
        with self._lock:
            name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def copy(self, url: str) -> str:
        """A new database made from the one at ``url`` (closed: nobody may be connected to
        it); the copy's URL."""
        source = url.split("@/", 1)[1].split("?", 1)[0]
        with self._lock:
            name = f"c_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        return self.url(name)

    def replace(self, url: str, source_url: str) -> None:
        """Make the database at ``url`` a copy of the one at ``source_url`` (nobody may be
        connected to either); the URL stays the same."""
        name, source = (u.split("@/", 1)[1].split("?", 1)[0] for u in (url, source_url))
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


STORES = ("sqlite", "postgresql")
_store = {"kind": "sqlite"}
"""The ``--store`` of this test session (set once, by ``pytest_configure``)."""
_databases: dict[Path, str] = {}
"""PostgreSQL runs: the database URL of each data dir."""


_sqlite_homes: set[Path] = set()
"""Data dirs of tests about SQLite's own file: SQLite on either run."""


def use_sqlite(home: Path) -> None:
    """The data dir ``home`` keeps its SQLite file on either run (a test of that file)."""
    _sqlite_homes.add(home.resolve())


def set_store_kind(kind: str) -> None:
    assert kind in STORES
    _store["kind"] = kind


def store_kind() -> str:
    """``sqlite`` or ``postgresql``: the store of this test session (``--store``)."""
    return _store["kind"]


def new_database_url() -> str | None:
    """A fresh, empty store for a data dir: None (its SQLite file) on SQLite runs, a new
    database on the session's PostgreSQL server on PostgreSQL runs."""
    if store_kind() != "postgresql":
        return None
    return pg_server().database()


def database_url_of(home: Path, url: str | None = None) -> str | None:
    """The store of the data dir ``home`` (None: its SQLite file), made on first use (or
    set to ``url``). The same data dir always gets the same database."""
    key = home.resolve()
    if store_kind() != "postgresql" or key in _sqlite_homes:
        return None
    if url is not None:
        _databases[key] = url
    elif key not in _databases:
        _databases[key] = pg_server().database()
    return _databases[key]


def copy_database(home: Path, dst: Path) -> None:
    """PostgreSQL runs: the data dir ``dst`` (a copy of the closed data dir ``home``) gets a
    copy of ``home``'s database, under the URL ``dst`` already has (if any). SQLite runs:
    nothing to do (the file was copied with the folder)."""
    source = database_url_of(home)
    if source is None:
        return
    target = database_url_of(dst)
    assert target is not None
    pg_server().replace(target, source)


def store_of(home: Path) -> Store:
    """The store of the data dir ``home`` on this run, opened as it is (no migration, no key
    check): for a test that edits rows as someone with write access to the database would.
    Close it when done."""
    url = database_url_of(home)
    return Store(home / DB_FILE) if url is None else Store(url=url)


def stored_bytes(store: Store) -> bytes:
    """Everything ``store`` holds, as bytes, to search for what must never be stored in the
    clear. SQLite: its files on disk (database and write-ahead log, free pages included).
    PostgreSQL: every value of every table, read back (binary values as they are, others in
    their text form); dead row versions are not readable this way (see ``Store.scrub``)."""
    if store.path is not None:
        files = store.path.parent.glob(store.path.name + "*")
        return b"".join(p.read_bytes() for p in sorted(files) if p.is_file())
    chunks: list[bytes] = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


_SERVER: PgServer | None = None
_SERVER_LOCK = threading.Lock()


def pg_server() -> PgServer:
    """The session's one server, started on first use and stopped when the process exits."""
    global _SERVER
    with _SERVER_LOCK:
        if _SERVER is None:
            _SERVER = PgServer()
            atexit.register(_SERVER.stop)
        return _SERVER
