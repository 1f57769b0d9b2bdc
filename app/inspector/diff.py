"""What changed between two snapshots (pure: two wire-format dicts in, one dict out).

diff(before, after, *, storage_keys_before=None, storage_keys_after=None) -> Changes:
{
  "tensors":  {"added": [name], "removed": [name],
               "changed": [{"name": str, "fields": {field: [before, after]},
                            "values_changed": bool}]},   # preview values differ
  "arrays":   {... same shape ...},
  "storages": {"added": [id in `after`], "freed": [{"id": id in `before`, "members": [names]}]},
  "graph":    {"added": [{"id": id in `after`, "name": str}], "removed": int},
  "modules":  {"added": [name], "removed": [name], "changed": [... same ...]},
  "empty": bool,   # nothing above changed
}
Tensors and arrays are matched by name (what a learner types). A snapshot's own storage ids
("s0") are its discovery order, so they cannot be matched by id: the tracer passes stable
per-allocation keys (`storage_keys_*`: {snapshot id: key}; in a traced run the ids are those
labels too, app.inspector.labels); without them a storage is matched by its member names, which
cannot see `x = x.contiguous()` rebinding x to new memory. Graph node ids are per snapshot
too: nodes are matched by (name, tensors), counted as a multiset.
`before=None` means "empty namespace" (the first step).
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Any

from .tensors import CHANGE_FIELDS as TENSOR_FIELDS  # next to the tensor entry's one key list

ARRAY_FIELDS = ("shape", "strides", "dtype", "offset_bytes", "writeable", "aliases")
MODULE_FIELDS = ("training", "param_count")


def diff(
    before: dict | None,
    after: dict,
    *,
    storage_keys_before: dict[str, str] | None = None,
    storage_keys_after: dict[str, str] | None = None,
) -> dict[str, Any]:
    before = before or {}
    kb, ka = storage_keys_before or {}, storage_keys_after or {}
    keyed = bool(storage_keys_after)
    changes: dict[str, Any] = {
        "tensors": entry_changes(
            before.get("tensors", []), after.get("tensors", []), TENSOR_FIELDS, (kb, ka) if keyed else None
        ),
        "arrays": entry_changes(
            before.get("arrays", []), after.get("arrays", []), ARRAY_FIELDS, (kb, ka) if keyed else None
        ),
        "storages": _storages(
            before.get("storages", []),
            after.get("storages", []),
            kb if keyed else None,
            ka if keyed else None,
        ),
        "graph": graph_changes(before.get("graph") or {}, after.get("graph") or {}),
        "modules": entry_changes(before.get("modules", []), after.get("modules", []), MODULE_FIELDS, None),
    }
    changes["empty"] = is_empty(changes)
    return changes


def empty_changes() -> dict[str, Any]:
    def none() -> dict[str, list]:
        return {"added": [], "removed": [], "changed": []}

    return {
        "tensors": none(),
        "arrays": none(),
        "storages": {"added": [], "freed": []},
        "graph": {"added": [], "removed": 0},
        "modules": none(),
        "empty": True,
    }


def is_empty(changes: dict[str, Any]) -> bool:
    return not any(
        v for section in ("tensors", "arrays", "storages", "modules") for v in changes[section].values()
    ) and not (changes["graph"]["added"] or changes["graph"]["removed"])


def _same_objects(old: list, new: list) -> bool:
    """The same entry objects in the same order: what the step observer hands over for a section
    nothing touched (an O(n) identity check in C instead of dicts and comparisons)."""
    return old is new or (len(old) == len(new) and all(map(operator.is_, old, new)))


def entry_changes(
    old: list[dict], new: list[dict], fields: tuple[str, ...], keys: tuple[dict, dict] | None
) -> dict[str, list]:
    if _same_objects(old, new):  # as `prev is entry` below: an entry shared is an entry unchanged
        return {"added": [], "removed": [], "changed": []}
    old_by = {e.get("name"): e for e in old}
    new_by = {e.get("name"): e for e in new}
    changed = []
    for name, entry in new_by.items():
        prev = old_by.get(name)
        if prev is None or prev is entry:  # the observer reuses unchanged entries as they are
            continue
        moved = keys is not None and (keys[0].get(prev.get("storage")) != keys[1].get(entry.get("storage")))
        if prev == entry and not moved:
            continue  # the common case, decided in C
        delta = {f: [prev.get(f), entry.get(f)] for f in fields if prev.get(f) != entry.get(f)}
        if moved:
            delta["storage"] = [prev.get("storage"), entry.get("storage")]
        values = _preview(prev) != _preview(entry)
        if delta or values:
            changed.append({"name": name, "fields": delta, "values_changed": values})
    return {
        "added": [n for n in new_by if n not in old_by],
        "removed": [n for n in old_by if n not in new_by],
        "changed": changed,
    }


def _preview(entry: dict) -> Any:
    preview = entry.get("preview")
    return preview.get("values") if isinstance(preview, dict) else None


def _storages(old: list[dict], new: list[dict], kb: dict | None, ka: dict | None) -> dict:
    if old is new and kb == ka:  # the observer's unchanged grouping
        return {"added": [], "freed": []}
    if ka is not None and kb is not None:
        old_keys = {kb.get(s.get("id")) for s in old} - {None}
        new_keys = {ka.get(s.get("id")) for s in new} - {None}
        added = [s["id"] for s in new if ka.get(s.get("id")) not in old_keys]
        freed = [s for s in old if kb.get(s.get("id")) not in new_keys]
    else:
        old_members = [_members(s) for s in old]
        new_members = [_members(s) for s in new]
        added = [
            s["id"] for s, m in zip(new, new_members, strict=False) if not any(m & o for o in old_members)
        ]
        freed = [s for s, m in zip(old, old_members, strict=False) if not any(m & n for n in new_members)]
    return {"added": added, "freed": [{"id": s.get("id"), "members": sorted(_members(s))} for s in freed]}


def _members(storage: dict) -> set[str]:
    return {m.get("name") for m in storage.get("members", [])}


def _node_key(node: dict) -> tuple:
    return node.get("name"), tuple(node.get("tensors", []))


def graph_changes(old: dict, new: dict) -> dict:
    if old.get("nodes") == new.get("nodes"):
        return {"added": [], "removed": 0}
    remaining = Counter(_node_key(n) for n in old.get("nodes", []))
    added = []
    for node in new.get("nodes", []):
        key = _node_key(node)
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            added.append({"id": node.get("id"), "name": node.get("name")})
    return {"added": added, "removed": sum(remaining.values())}


# ---- compact step states ------------------------------------------------------------------------
# A traced run ships the state after every step as a delta from the previous step's state, since
# full snapshots would be ~50x bigger. List sections are keyed (tensors, arrays and modules by
# name, storages by id); the graph and the truncated flag are sent whole when they changed.
KEYED_SECTIONS = {"tensors": "name", "arrays": "name", "storages": "id", "modules": "name"}
WHOLE_SECTIONS = {"graph": {"nodes": [], "edges": [], "truncated": False}, "truncated": False}


def state_delta(before: dict | None, after: dict) -> dict[str, Any]:
    """{"tensors": {"keys": [..] | null, "set": [entries]}, ... per keyed section,
        "graph" | "truncated": value, absent when unchanged}.
    `keys` (the new order) is null when the keys and their order are unchanged; `set` holds
    the entries that are new or differ."""
    before = before or {}
    delta: dict[str, Any] = {}
    for section, key in KEYED_SECTIONS.items():
        new = after.get(section, [])
        if _same_objects(before.get(section, []), new):
            delta[section] = {"keys": None, "set": []}
            continue
        old = {e.get(key): e for e in before.get(section, [])}
        keys = [e.get(key) for e in new]
        delta[section] = {
            "keys": None if keys == list(old) else keys,
            "set": [e for e in new if not _same(old.get(e.get(key)), e)],
        }
    for section in WHOLE_SECTIONS:
        if section in after and before.get(section) != after[section]:
            delta[section] = after[section]
    return delta


def _same(old: Any, new: Any) -> bool:
    return old is new or old == new  # identity first: most entries are unchanged, shared objects


def apply_state(before: dict | None, delta: dict) -> dict[str, Any]:
    """The inverse of state_delta: apply_state(b, state_delta(b, a)) == a (warnings aside)."""
    before = before or {}
    state: dict[str, Any] = {}
    for section, key in KEYED_SECTIONS.items():
        part = delta.get(section) or {}
        by_key = {e.get(key): e for e in before.get(section, [])}
        by_key.update({e.get(key): e for e in part.get("set") or []})
        keys = part.get("keys")
        if keys is None:
            keys = [e.get(key) for e in before.get(section, [])]
        state[section] = [by_key[k] for k in keys if k in by_key]
    for section, default in WHOLE_SECTIONS.items():
        state[section] = delta[section] if section in delta else before.get(section, default)
    return state
