"""Helpers for the page tests: real snapshots of real torch objects, in-process."""

from app.inspector import snapshot
from app.schemas import RunResponse


def response_for(namespace: dict, **fields) -> RunResponse:
    """What the JSON API would return for a snippet that left ``namespace`` behind."""
    data = snapshot(namespace)
    data.update({"ok": True, **fields})
    return RunResponse.model_validate(data)
