"""Persistence: SQLite through SQLAlchemy 2, schema owned by Alembic, templates encrypted."""
