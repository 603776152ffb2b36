"""HTTP API (FastAPI): routes only; services come from the composition root, `app.Handbook`."""
