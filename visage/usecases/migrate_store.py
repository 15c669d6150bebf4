"""Move an install from its SQLite file to PostgreSQL: ``visage migrate-store --to URL``.

Every table is copied row by row, in foreign-key order, through the schema's own column
types: the same ids, the same sealed bytes, the same audit entries (their hashes cover
every field, so a changed timestamp or detail would break the chain). The source is read
in one transaction that holds SQLite's write lock, so the copy is one consistent snapshot
and nobody writes to it meanwhile; nothing is written to it.

The target is filled in one PostgreSQL transaction: schema (the same Alembic migrations),
rows, then a check of the copy against the source (row count and a digest of the rows of
every table, the gallery digest) before the commit. A failure anywhere before that rolls
everything back, leaving the target as empty as it was. After the commit the audit chain is
verified on the target as ``visage audit verify`` would, with the data dir's signing key
and witness.

Keys stay where they are: the master key, ``keys/`` (subjects' data keys) and the signing
key are files of the data dir, shared by the SQLite and the PostgreSQL store alike. Once
moved, the data dir uses PostgreSQL only when told to (``VISAGE_DATABASE_URL``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Table, delete, insert, inspect, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from visage.core import Visage
from visage.errors import InputError, VisageError
from visage.gallery import repository as repo
from visage.governance.audit import VerifyReport
from visage.masking import mask_url
from visage.store.db import Store, upgrade
from visage.store.schema import AuditEntryRow, Base, Meta
from visage.usecases import audit_log

_BATCH = 500
"""Rows per INSERT batch (executemany), so that a large events table is not held at once."""
_NOT_VISAGE = {"alembic_version", "sqlite_sequence"}
"""Tables of the engines and of Alembic, not of Visage's schema."""


class TableCopy(BaseModel):
    table: str
    rows: int = Field(description="rows copied (the same number read back from the target)")
    digest: str = Field(description="SHA-256 of the table's rows in key order, equal on both")


class MigrateStoreReport(BaseModel):
    source: str = Field(description="the SQLite file copied (left as it was)")
    target: str = Field(description="the PostgreSQL database written, password masked")
    tables: list[TableCopy]
    rows: int
    gallery_digest: str = Field(description="the gallery's content digest, equal on both")
    audit_entries: int = Field(description="audit entries verified on the target")
    audit_ok: bool
    seconds: float
    next_step: str = Field(description="how to make the data dir use the copy")


class TargetNotEmptyError(VisageError):
    """The target database already holds tables: migrate-store fills an empty one only."""


def postgresql_url(to: str) -> str:
    """``to`` as the SQLAlchemy URL of a PostgreSQL database (psycopg 3); anything else is
    refused with a readable message."""
    try:
        parsed = make_url(to.strip())
    except ArgumentError:
        raise InputError(
            f"--to {to!r} is not a database URL; give postgresql+psycopg://user:pass@host/db"
        ) from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise InputError(
            f"--to must name a PostgreSQL database (postgresql+psycopg://user:pass@host/db), "
            f"not {parsed.get_backend_name()!r}"
        )
    if not parsed.database:
        raise InputError("--to names no database: add its name, as in postgresql://host/visage")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def migrate_store(core: Visage, to: str) -> MigrateStoreReport:
    """Copy the data dir's SQLite store into the empty PostgreSQL database ``to``, verify
    the copy, and leave the source as it was."""
    started = time.monotonic()
    url = postgresql_url(to)
    if core.settings.database_url is not None:
        raise InputError(
            f"this data dir already uses the database at {mask_url(core.settings.database_url)}; "
            "migrate-store copies a data dir's SQLite file (unset VISAGE_DATABASE_URL to name it)"
        )
    source = core.store  # opened and key-checked: the master key opens what is copied
    assert source.path is not None
    before = audit_log.verify(core)
    if not before.ok:
        raise VisageError(
            f"the audit chain of {source.path} does not verify ({before.problem}); a copy "
            "could not be shown to be faithful: resolve that first (visage audit verify)"
        )
    target = Store(url=url)
    try:
        tables, digest = _copy(source, target)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise VisageError(f"cannot write to the database at {target.url}: {reason}") from None
    except DBAPIError as exc:  # a row the target refuses: nothing was committed
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise VisageError(
            f"the database at {target.url} refused a row ({reason}); nothing was copied"
        ) from None
    finally:
        target.close()
    entries = next(t.rows for t in tables if t.table == AuditEntryRow.__tablename__)
    after = _verify_copy(core, url)
    if not after.ok or after.entries != entries:
        raise VisageError(
            f"the copy at {target.url} was written but its audit chain does not verify "
            f"({after.problem or f'{after.entries} entries, not {entries}'}); do not "
            "use it: drop that database and run migrate-store again"
        )
    return MigrateStoreReport(
        source=str(source.path),
        target=target.url,
        tables=tables,
        rows=sum(t.rows for t in tables),
        gallery_digest=digest,
        audit_entries=after.entries,
        audit_ok=after.ok,
        seconds=round(time.monotonic() - started, 2),
        next_step="set VISAGE_DATABASE_URL (or database_url in the config file) to the target "
        "URL, with this data dir's keys: every process of this install then uses PostgreSQL",
    )


def _tables() -> list[Table]:
    """Visage's tables, parents before children; ``meta`` last, because the consent-token
    triggers write it when subjects and consents are inserted (its copy must win)."""
    ordered = [t for t in Base.metadata.sorted_tables if t.name != Meta.__tablename__]
    return [*ordered, Base.metadata.tables[Meta.__tablename__]]


def _copy(source: Store, target: Store) -> tuple[list[TableCopy], str]:
    """Copy, compare, commit; the tables copied and the gallery digest (equal on both)."""
    tables = _tables()
    with source.session() as src_session, target.engine.begin() as dst:
        # SQLite's write lock for the whole copy: one snapshot, no writer meanwhile. A no-op
        # write: the file is not changed.
        try:
            Store.serialise(src_session, "migrate-store")
        except OperationalError:
            raise VisageError(
                f"the SQLite file {source.path} stayed busy: another process is writing to it "
                "(stop visage serve and any other visage command first)"
            ) from None
        src = src_session.connection()
        _check_schemas(src, tables)
        found = sorted(set(inspect(dst).get_table_names()))
        if found:
            raise TargetNotEmptyError(
                f"the database at {target.url} is not empty (tables: {', '.join(found[:5])}"
                f"{', …' if len(found) > 5 else ''}); migrate-store fills an empty database only"
            )
        upgrade(dst)  # the same migrations as every PostgreSQL install, in this transaction
        copies = []
        for table in tables:
            # Rows the migrations seeded, and the token the triggers stamped as subjects and
            # consents went in (meta comes last): the source's rows replace them.
            dst.execute(delete(table))
            copies.append(_copy_table(src, dst, table))
        _reset_sequences(dst, tables)
        for copy, table in zip(copies, tables, strict=True):
            rows, digest = _digest(dst, table)
            if (rows, digest) != (copy.rows, copy.digest):
                raise VisageError(
                    f"table {table.name}: {rows} rows in the target, {copy.rows} in the source "
                    "(or the same number with different content); nothing was committed"
                )
        digests = {_gallery_digest(conn) for conn in (src, dst)}
        if len(digests) != 1:
            raise VisageError("the gallery digests differ after the copy; nothing was committed")
    return copies, digests.pop()


def _gallery_digest(conn: Connection) -> str:
    """The gallery's content digest (see :func:`visage.gallery.repository.gallery_digest`),
    read on a plain connection."""
    found = conn.execute(select(Meta.value).where(Meta.key == repo.GALLERY_DIGEST)).scalar()
    return bytes(found).hex() if found is not None else "0" * 64


def _check_schemas(src: Connection, tables: Sequence[Table]) -> None:
    """The source holds exactly the tables this version knows (it was migrated on open)."""
    present = set(inspect(src).get_table_names()) - _NOT_VISAGE
    known = {t.name for t in tables}
    if present != known:
        raise VisageError(
            "the SQLite file's tables do not match this version's schema (unknown: "
            f"{sorted(present - known)}, missing: {sorted(known - present)}); upgrade Visage"
        )


def _ordered(table: Table) -> Any:
    return select(table).order_by(*table.primary_key.columns)


def _copy_table(src: Connection, dst: Connection, table: Table) -> TableCopy:
    """Every row of ``table``, read and written through the schema's column types (UTC
    datetimes, JSON, binary), in batches; the digest of what was read."""
    hasher = hashlib.sha256()
    rows = 0
    batch: list[dict[str, Any]] = []
    for row in src.execute(_ordered(table)).mappings():
        values = dict(row)
        _feed(hasher, values.values())
        batch.append(values)
        rows += 1
        if len(batch) == _BATCH:
            dst.execute(insert(table), batch)
            batch = []
    if batch:
        dst.execute(insert(table), batch)
    return TableCopy(table=table.name, rows=rows, digest=hasher.hexdigest())


def _digest(conn: Connection, table: Table) -> tuple[int, str]:
    hasher = hashlib.sha256()
    rows = 0
    for row in conn.execute(_ordered(table)):
        _feed(hasher, row)
        rows += 1
    return rows, hasher.hexdigest()


def _feed(hasher: Any, values: Iterable[Any]) -> None:
    """One row into the digest, each value in a form that is the same whichever engine it
    was read from (the column types have already converted it)."""
    row = [_canonical(v) for v in values]
    hasher.update(json.dumps(row, sort_keys=True, default=repr).encode())


def _canonical(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return {"b": bytes(value).hex()}
    if isinstance(value, date):  # and datetime (aware UTC from either engine)
        return {"t": value.isoformat()}
    return value


def _reset_sequences(dst: Connection, tables: Sequence[Table]) -> None:
    """Rows were copied with their own integer ids: move each id sequence past the largest,
    so that the next row PostgreSQL numbers itself does not collide."""
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        dst.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:t, :c), "
                f'coalesce((SELECT max("{column.name}") FROM "{table.name}"), 0) + 1, false)'
            ),
            {"t": table.name, "c": column.name},
        )


def _verify_copy(core: Visage, url: str) -> VerifyReport:
    """``visage audit verify`` on the copy: a core of the same data dir (keys, signing key,
    witness) on the target database."""
    copy = Visage(core.settings.model_copy(update={"database_url": url}))
    try:
        return audit_log.verify(copy)
    finally:
        copy.close()
