"""Tensor Playground inspector: live Python objects in, JSON-able dicts out.

Pure functions only (stdlib + torch + numpy; no I/O, no web imports) so the
sandbox child can call it on a GPU box. See encoder.py for the wire format.
"""

from .encoder import snapshot
from .limits import InspectLimits

__all__ = ["snapshot", "InspectLimits"]
