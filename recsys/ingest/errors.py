"""Errors that stop a whole load. Row-level problems are rejects, not exceptions."""


class IngestError(Exception):
    """The file cannot be loaded at all (unreadable, unparseable, missing columns).

    Nothing of the file is loaded when this is raised.
    """
