"""Step-through options: the caps of a traced run and what each step carries.

What a step carries, dearest first: `states` (its changes and the whole state after it), the
default; states=False, the light mode (its changes only); `outline` (neither: its place,
lines, grad mode and stdout, at about a plain run's cost; `states` is then ignored), and with
it `state_at=k`, step k alone carrying its changes and the whole state after it (as a delta
from the empty state): what the page asks for when a learner opens one step. `state_only` (with
state_at) sends that step's view alone: the steps up to k and the calls made until then, none of
the final snapshot. The run still goes to its end (step k's storage ids are named after the final
snapshot's, app.sandbox.trace_outline); what is not sent is not encoded, carried or validated.

One frozen dataclass holds the one set of defaults: app.settings defaults its ``TP_TRACE_*``
fields from it, the server sends ``to_wire()`` in the run request (app.sandbox.protocol), and
the worker (app.sandbox.child, app.sandbox.trace) reads only the object ``from_wire()`` built. A
key it does not know, or a value of the wrong type, is an error: a misspelt cap silently left
at its default would look like a stepping bug. Stdlib only: the web process imports it too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# The least each cap may be (app.settings checks the same bounds on its TP_TRACE_* fields).
MINIMUMS = {"steps_max": 1, "loop_iterations_max": 1, "loop_body_iterations_max": 0, "bytes_max": 1024}


@dataclass(frozen=True)
class TraceOptions:
    """`states`: each step also carries the whole state after it (several times dearer).
    `outline`: no step carries changes or state (`states` ignored); `state_at` (outline only):
    the index of the one step that does; `state_only` (with state_at): the result is that
    step's view only (see the module)."""

    steps_max: int = 200
    loop_iterations_max: int = 20
    # The first iterations of a top-level loop are also stepped statement by statement.
    loop_body_iterations_max: int = 2
    bytes_max: int = 4 * 1024 * 1024  # the steps' share of the result, as JSON bytes
    states: bool = True
    outline: bool = False
    state_at: int | None = None
    state_only: bool = False

    def __post_init__(self) -> None:
        for name, least in MINIMUMS.items():
            value = getattr(self, name)
            # bool is an int subclass; a True cap is a caller's mistake, not 1.
            if type(value) is not int or value < least:
                raise ValueError(f"trace option {name} must be an int >= {least}, not {value!r}")
        if type(self.states) is not bool:
            raise ValueError(f"trace option states must be a bool, not {self.states!r}")
        if type(self.outline) is not bool:
            raise ValueError(f"trace option outline must be a bool, not {self.outline!r}")
        if self.state_at is not None:
            if type(self.state_at) is not int or self.state_at < 0:
                raise ValueError(f"trace option state_at must be an int >= 0 or null, not {self.state_at!r}")
            if not self.outline:
                # Without outline every step carries what it carries anyway: a state_at there
                # is a caller who meant an outline run.
                raise ValueError("trace option state_at needs outline=true")
        if type(self.state_only) is not bool:
            raise ValueError(f"trace option state_only must be a bool, not {self.state_only!r}")
        if self.state_only and self.state_at is None:
            raise ValueError("trace option state_only needs state_at")

    @classmethod
    def from_wire(cls, data: TraceOptions | dict[str, Any] | bool) -> TraceOptions:
        """The options a request's "trace" names: true (the defaults), or a dict of some of the
        fields (the others at their defaults). Raises ValueError on an unknown key."""
        if isinstance(data, TraceOptions):
            return data
        if data is True:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"trace options must be true or a dict, not {type(data).__name__}")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown trace option(s) {unknown}; known: {list(FIELDS)}")
        return cls(**data)

    def to_wire(self) -> dict[str, Any]:
        """Every field, JSON-able: what from_wire() reads back into an equal object."""
        return dataclasses.asdict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(TraceOptions))
