"""The application core: one module per use-case. CLI, API and web only call these."""
