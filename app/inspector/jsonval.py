"""Turn Python/numpy scalars into values json.dumps(allow_nan=False) accepts.

The wire format spells non-finite floats as "nan"/"inf"/"-inf" and complex
numbers as strings like "1+2j", because strict JSON has neither.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .limits import InspectLimits


def encode_float(value: float) -> float | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def encode_complex(value: complex) -> str:
    # str(complex) is "(1+2j)" and already spells nan/inf parts; drop parens.
    return str(complex(value)).strip("()")


def encode_scalar(value: Any) -> Any:
    """One scalar -> JSON scalar; anything unknown -> repr() string."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)  # numpy integers too; numpy bool_ is not Integral
    if isinstance(value, numbers.Real):
        return encode_float(float(value))
    if isinstance(value, numbers.Complex):
        return encode_complex(complex(value))
    if hasattr(value, "dtype") and getattr(value, "shape", None) == ():
        return encode_scalar(value.item())  # numpy scalar / bool_
    return repr(value)


def encode_nested(values: Any) -> Any:
    """Encode every leaf of a nested list (as produced by tolist())."""
    if isinstance(values, list):
        return [encode_nested(v) for v in values]
    return encode_scalar(values)


def encode_setting(value: Any, items_max: int = InspectLimits.setting_items_max) -> Any:
    """Optimizer hyperparameter: JSON scalar, list of scalars, or repr(). A list of more than
    `items_max` scalars keeps its first items_max - 1 and ends in "…" (the schema's cap)."""
    if isinstance(value, (list, tuple)):
        if all(_is_plain_scalar(v) for v in value):
            if len(value) > items_max:
                return [encode_scalar(v) for v in value[: items_max - 1]] + ["…"]
            return [encode_scalar(v) for v in value]
        return repr(value)
    if _is_plain_scalar(value):
        return encode_scalar(value)
    return repr(value)


def _is_plain_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, str, numbers.Number))
