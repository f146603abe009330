"""ctsnas serve: the HTTP API (FastAPI) and web page over search jobs and zero-shot queries."""
