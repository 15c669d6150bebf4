"""Persistence: SQLite through SQLAlchemy 2, schema owned by Alembic, templates encrypted."""

DB_FILE = "visage.db"
"""The SQLite file in the data dir. Named here, where importing it costs nothing, so that
whether a data dir is initialised is known without loading SQLAlchemy."""
