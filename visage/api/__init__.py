"""The REST API: a thin FastAPI adapter over :mod:`visage.usecases`."""
