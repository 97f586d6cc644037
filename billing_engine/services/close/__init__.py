"""The monthly close (``../shared/spec/close.md``): start, review, approve, hold, lock,
export, reopen, status and log over the store.

``commands`` holds the state changes (one transaction each), ``export`` the claim files,
``status`` the reading commands; ``lines``, ``edits`` and ``claims`` are pure polars:
line matching and adjustments, claim edits, claims from approved lines.
"""
