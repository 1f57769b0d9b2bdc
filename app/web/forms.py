"""The page's urlencoded forms, parsed strictly: a bad field is a 422 with a reason, never a 500.

`parse_qs` accepted anything: invalid percent-escapes and UTF-8 became U+FFFD, any number of
fields was kept, and a `step` of "²" passed `str.isdigit()` and then broke `int()`. Here every
known field has a shape and a length cap, unknown fields are dropped (but still counted and
capped), a repeated field is refused, and numbers are plain ASCII digits of bounded length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

FIELDS_MAX = 16  # the page's forms have at most five fields
UNKNOWN_FIELD_BYTES_MAX = 1024
NAME_BYTES_MAX = 64
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class FormError(ValueError):
    """The body is not a form this server accepts; the message says why (shown as a 422)."""


@dataclass(frozen=True)
class Field:
    """What one field may hold. `pattern` is matched against the whole decoded value;
    `chars_max` None: bounded only by the body limit (the code, whose size the run checks)."""

    chars_max: int | None
    pattern: re.Pattern[str] | None = None
    meaning: str = "text"


DIGITS = re.compile(r"[0-9]{0,5}")  # step and tensor row numbers; empty means "not given"

PAGE_FIELDS: dict[str, Field] = {
    "code": Field(None),
    "focus": Field(1024),  # a tensor name (at most 256 characters in the schema)
    "step": Field(5, DIGITS, "a step number (up to 5 ASCII digits)"),
    "t": Field(5, DIGITS, "a tensor row number (up to 5 ASCII digits)"),
    # A lazy stride diagram's layout (app.web.layouts parses it; LAYOUT_CHARS_MAX there).
    "layout": Field(16 * 1024),
}


def parse(body: bytes, fields: dict[str, Field] = PAGE_FIELDS) -> dict[str, str]:
    """The known fields of an application/x-www-form-urlencoded `body`; FormError if any part
    of it is malformed. Linear in the body's size."""
    pairs = [p for p in body.split(b"&") if p] if body else []
    if len(pairs) > FIELDS_MAX:
        raise FormError(f"the form has {len(pairs)} fields; at most {FIELDS_MAX} are accepted")
    out: dict[str, str] = {}
    for pair in pairs:
        raw_name, _, raw_value = pair.partition(b"=")
        name = _decode(raw_name, NAME_BYTES_MAX * 3, "a field name")
        spec = fields.get(name)
        cap = UNKNOWN_FIELD_BYTES_MAX if spec is None else spec.chars_max
        value = _decode(raw_value, None if cap is None else cap * 12, f"field {name!r}")
        if spec is None:
            continue
        if name in out:
            raise FormError(f"field {name!r} is given more than once")
        out[name] = _check(name, value, spec)
    if "code" in out:
        out["code"] = out["code"].replace("\r\n", "\n")
    return out


def _decode(raw: bytes, raw_max: int | None, what: str) -> str:
    # Checked before decoding, so an oversize field costs no more than a scan of its bytes.
    # A character is at most 4 UTF-8 bytes, each at most 3 encoded ones: cap * 12 bounds it.
    if raw_max is not None and len(raw) > raw_max:
        raise FormError(f"{what} is too long")
    if _BAD_ESCAPE.search(raw):
        raise FormError(f"{what} has an invalid percent-escape")
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise FormError(f"{what} is not valid UTF-8") from None


def _check(name: str, value: str, spec: Field) -> str:
    if spec.chars_max is not None and len(value) > spec.chars_max:
        raise FormError(f"field {name!r} is {len(value)} characters; the limit is {spec.chars_max}")
    if spec.pattern is not None and not spec.pattern.fullmatch(value):
        raise FormError(f"field {name!r} must be {spec.meaning}")
    return value
