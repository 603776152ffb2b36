"""HTTP API (FastAPI): routes only; services come from handbook.app (not built yet)."""
