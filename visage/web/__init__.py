"""The web console: server-rendered pages for the people who oversee Visage (admins,
enrollers, operators, reviewers, auditors), mounted in the same FastAPI application as the
API. A thin door: every page calls the use-cases in :mod:`visage.usecases` and checks roles
with :mod:`visage.governance.access`, like the API and the CLI."""
