"""The HTTP service (FastAPI) over the recsys library."""
