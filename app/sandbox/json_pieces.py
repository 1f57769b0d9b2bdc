"""Parse a big JSON document in pieces, so that no single C call holds the GIL for long.

The server reads each worker's result with it (app.sandbox.outcome).

orjson parses a 16 MiB result in one call of ~250 ms (measured here), and while it runs no other
thread of the server runs: /api/health, every other request, the event loop itself. So a
document bigger than WHOLE_BYTES_MAX is first laid out with numpy (a few vectorized passes over its
bytes, most of which release the GIL: where the strings are, the nesting depth of every bracket,
comma and colon, which bracket closes which), its nesting depth is bounded before anything is
parsed, and then it is parsed container by container: runs of small items go to one
wirejson.loads call each (at most PIECE_BYTES), and an item bigger than that is split again.

For valid JSON the result is exactly wirejson.loads(data) (tests/sandbox/test_wirejson.py checks
it): backslashes only occur inside strings there, so the layout is exact. For invalid JSON some
piece fails to parse, a ValueError as from wirejson.loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.sandbox import wirejson

PIECE_BYTES = 128 * 1024  # ~1 ms of orjson here
# Below this, one orjson call (~10 ms here) beats laying the document out (2-3x slower in all).
WHOLE_BYTES_MAX = 1024 * 1024
DEPTH_MAX = 128  # the inspector writes ~72 levels (a 64-dimensional preview in a step)
_STRUCTURAL = b"[]{},:"
_WHITESPACE = b" \t\r\n"


def loads(data: bytes) -> Any:
    """wirejson.loads, in pieces of at most PIECE_BYTES; ValueError when not JSON or nested
    deeper than DEPTH_MAX."""
    if len(data) <= WHOLE_BYTES_MAX:
        return wirejson.loads(data)
    layout = _layout(data)
    start, end = _strip(data, 0, len(data))
    return _Parser(data, layout).value(start, end)


@dataclass(frozen=True)
class _Layout:
    pos: np.ndarray  # positions of the brackets, commas and colons outside strings
    level: np.ndarray  # depth inside which each of them stands (a bracket: its inside's)
    close_key: np.ndarray  # sorted level * width + position of every closing bracket
    sep_key: np.ndarray  # sorted level * width + position of every comma and colon
    width: int


def _layout(data: bytes) -> _Layout:
    a = np.frombuffer(data, dtype=np.uint8)
    pos = np.flatnonzero(_any_of(a, _STRUCTURAL))
    pos = pos[~_in_string(a, pos)]
    kind = a[pos]
    opens, closes = (kind == 0x5B) | (kind == 0x7B), (kind == 0x5D) | (kind == 0x7D)
    level = np.cumsum(opens.astype(np.int64) - closes)
    if len(level) and (level.min() < 0 or level[-1] != 0):
        raise ValueError("JSON brackets do not balance")
    if len(level) and level.max() > DEPTH_MAX:
        raise ValueError(f"JSON nested deeper than {DEPTH_MAX} levels")
    level[closes] += 1  # a closing bracket stands at its container's level, as its opener does
    width = len(data) + 1
    seps = ~(opens | closes)
    # Openers and closers of one level alternate in position order, so the closer of an opener
    # is the first closer of its level after it: one binary search, no table of pairs.
    return _Layout(
        pos,
        level,
        np.sort(level[closes] * width + pos[closes]),
        np.sort(level[seps] * width + pos[seps]),
        width,
    )


def _any_of(a: np.ndarray, values: bytes) -> np.ndarray:
    """a == v for any v: comparisons release the GIL, a table lookup (np.take) held it ~90 ms."""
    mask = a == values[0]
    for v in values[1:]:
        mask |= a == v
    return mask


def _in_string(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """For each position, whether it lies inside a string: after an odd number of the quotes
    that are not escaped (preceded by an even run of backslashes)."""
    quotes = np.flatnonzero(a == 0x22)
    slashes = np.flatnonzero(a == 0x5C)
    if len(slashes) and len(quotes):
        new_run = np.ones(len(slashes), dtype=bool)
        new_run[1:] = np.diff(slashes) != 1
        run_start = slashes[np.maximum.accumulate(np.where(new_run, np.arange(len(slashes)), 0))]
        last = np.searchsorted(slashes, quotes) - 1  # the last backslash before each quote
        safe = np.maximum(last, 0)
        adjacent = (last >= 0) & (slashes[safe] == quotes - 1)
        run = np.where(adjacent, quotes - run_start[safe], 0)
        quotes = quotes[run % 2 == 0]
    return np.searchsorted(quotes, pos) % 2 == 1


def _strip(data: bytes, start: int, end: int) -> tuple[int, int]:
    while start < end and data[start] in _WHITESPACE:
        start += 1
    while end > start and data[end - 1] in _WHITESPACE:
        end -= 1
    return start, end


class _Parser:
    def __init__(self, data: bytes, layout: _Layout) -> None:
        self.data, self.layout = data, layout
        self.bytes = np.frombuffer(data, dtype=np.uint8)

    def value(self, start: int, end: int) -> Any:
        """The value spanning data[start:end] (stripped)."""
        first = self.data[start] if start < end else None
        if end - start <= PIECE_BYTES or first not in (0x5B, 0x7B):
            return wirejson.loads(self.data[start:end])  # small, or a string or number
        layout, width = self.layout, self.layout.width
        level = int(layout.level[np.searchsorted(layout.pos, start)])
        i = int(np.searchsorted(layout.close_key, level * width + start))
        if i >= len(layout.close_key) or int(layout.close_key[i]) != level * width + end - 1:
            raise ValueError("a JSON container does not end where its value does")
        if self.data[end - 1] != first + 2:  # "[" + 2 is "]", "{" + 2 is "}"
            raise ValueError("a JSON container is closed by the other kind of bracket")
        items = self._items(level, start + 1, end - 1)
        return self._array(items) if first == 0x5B else self._object(items)

    def _items(self, level: int, start: int, end: int) -> list[tuple[int, int]]:
        """The (start, end) spans between the commas of one container's level; none for an
        empty container."""
        key, width = self.layout.sep_key, self.layout.width
        lo, hi = np.searchsorted(key, [level * width + start, level * width + end])
        seps = key[lo:hi] - level * width
        commas = seps[self.bytes[seps] == 0x2C].tolist()
        if not commas and not self.data[start:end].strip():
            return []
        bounds = [start - 1, *commas, end]
        return [(a + 1, b) for a, b in zip(bounds, bounds[1:], strict=False)]

    def _groups(self, items: list[tuple[int, int]]):
        """Runs of adjacent items of at most PIECE_BYTES together, and each bigger item alone:
        (first start, last end, is one big item)."""
        run: list[tuple[int, int]] = []
        for a, b in items:
            if b - a > PIECE_BYTES:
                if run:
                    yield run[0][0], run[-1][1], False
                    run = []
                yield a, b, True
            elif run and b - run[0][0] > PIECE_BYTES:
                yield run[0][0], run[-1][1], False
                run = [(a, b)]
            else:
                run.append((a, b))
        if run:
            yield run[0][0], run[-1][1], False

    def _piece(self, start: int, end: int) -> bytes:
        """Items start..end of a container; a piece of nothing is an empty item (`[1,]`), which
        bracketed alone would read as an empty container."""
        piece = self.data[start:end]
        if not piece.strip():
            raise ValueError("an empty item in a JSON container")
        return piece

    def _array(self, items: list[tuple[int, int]]) -> list:
        out: list = []
        for a, b, big in self._groups(items):
            if big:
                out.append(self.value(*_strip(self.data, a, b)))
            else:
                out.extend(wirejson.loads(b"[" + self._piece(a, b) + b"]"))
        return out

    def _object(self, items: list[tuple[int, int]]) -> dict:
        out: dict = {}
        for a, b, big in self._groups(items):
            if big:
                out.update([self._pair(a, b)])
            else:
                out.update(wirejson.loads(b"{" + self._piece(a, b) + b"}"))
        return out

    def _pair(self, start: int, end: int) -> tuple[str, Any]:
        """One big "key": value member; its colon is the first structural byte after the key
        outside a string."""
        i = int(np.searchsorted(self.layout.pos, start))
        colon = int(self.layout.pos[i]) if i < len(self.layout.pos) else end
        if colon >= end or self.data[colon] != 0x3A:
            raise ValueError("a JSON object member has no colon")
        key = wirejson.loads(self.data[start:colon])
        if not isinstance(key, str):
            raise ValueError("a JSON object key is not a string")
        return key, self.value(*_strip(self.data, colon + 1, end))
