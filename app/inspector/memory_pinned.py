"""The storages a view pins, for the ledger (app.inspector.memory): groups whose members, all
together, can reach only part of the bytes kept (`y = big[:10]; del big` keeps all of big).
used_bytes is the union of the members' byte ranges, found with one sort; the names are every
name (and alias) of the tensors and arrays in the group. Saved tensors are not members here.
"""

from __future__ import annotations

from .walk import WalkResult

PINNED_NAMES_MAX = 64  # the schema's


def pinned_storages(
    walked: WalkResult, storages: list[dict], sids: tuple[list[str | None], list[str | None]]
) -> list[dict]:
    """Groups whose members reach only part of their bytes, in the groups' order."""
    found = [dict(p, names=[]) for p in _partly_used(storages)]
    if found:
        names = {p["storage"]: p["names"] for p in found}
        pairs = zip((*walked.tensors, *walked.arrays), (*sids[0], *sids[1]), strict=False)
        for obj_found, sid in pairs:
            held = names.get(sid) if sid is not None else None
            if held is not None:
                held.extend(n for n in (obj_found.name, *obj_found.aliases) if n not in held)
                del held[PINNED_NAMES_MAX:]
    return found


class _Last:
    """The storages list _partly_used saw last (held: its identity is its own) and its answer."""

    storages: list[dict] | None = None
    partly: list[dict] = []


def _partly_used(storages: list[dict]) -> list[dict]:
    """{storage, nbytes, used_bytes} of each group its members reach only part of. The step
    observers hand over the very list of the step before while the layout holds (its entries
    are read-only): then the last answer is it."""
    if storages is _Last.storages:
        return _Last.partly
    found: list[dict] = []
    for s in storages:
        members = s["members"]
        if len(members) == 1:  # most storages: one tensor's own memory
            lo, hi = members[0]["byte_range"]
            used = max(hi - lo, 0)
        else:
            used = _covered([m["byte_range"] for m in members])
        if used < s["nbytes"]:
            found.append({"storage": s["id"], "nbytes": s["nbytes"], "used_bytes": used})
    _Last.storages, _Last.partly = storages, found
    return found


def _covered(ranges: list[list[int]]) -> int:
    """Bytes in the union of [lo, hi) ranges (one sort)."""
    total, end = 0, None
    for lo, hi in sorted(r for r in ranges if r[0] < r[1]):
        if end is None or lo >= end:
            total += hi - lo
            end = hi
        elif hi > end:
            total += hi - end
            end = hi
    return total
