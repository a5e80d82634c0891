"""Errors that stop a whole load. Row-level problems are rejects, not exceptions."""


class IngestError(Exception):
    """The file cannot be loaded at all (unreadable, unparseable, missing columns); nothing loaded."""
