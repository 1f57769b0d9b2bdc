"""A stride diagram's layout, carried by the page: what a lazy diagram needs, so any replica
draws it from the request alone (no cached run, no re-run).

A diagram reads one row's geometry only - its name, shape, strides, offset, dtype and element
size, byte range and its storage's size (app.web.view_model._diagram) - never values, so the
panels put that on each lazy placeholder (`data-layout`, compact JSON) and the page posts it
back when the tensor is focused. The request is the attacker's, so it is parsed like a worker's
answer: a strict model whose fields are the public schema's types with their caps (a name of at
most NAME_CHARS_MAX, at most DIMS_MAX dimensions of 64-bit sizes...), and the drawing is bounded
for any values by app.web.strides itself (undrawable, the grid and strip caps).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.schema_rules import BYTES_MAX, DIMS_MAX, Label, Name, Size
from app.schemas import ArrayInfo, RunResponse, StorageInfo, TensorInfo

# The field's cap: two labels (LABEL_CHARS_MAX each), a name and 2 x 64 numbers, JSON-escaped.
LAYOUT_CHARS_MAX = 16 * 1024
STORAGE_ID = "s0"  # the one storage of the one-row run a layout becomes

Dims = Annotated[list[Annotated[int, Field(ge=-1, le=2**63 - 1)]], Field(max_length=DIMS_MAX)]
Steps = Annotated[list[Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]], Field(max_length=DIMS_MAX)]
Range = Annotated[list[Annotated[int, Field(ge=0, le=BYTES_MAX)]], Field(min_length=2, max_length=2)]


class LayoutError(ValueError):
    """The layout is not one this server draws; the message says why (a 422)."""


class Layout(BaseModel):
    """One row's geometry. Short keys: it rides on every lazy placeholder of the page."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    k: Literal["t", "a"]  # a tensor or a numpy array
    n: Name
    shape: Dims
    st: Steps | None = None  # strides: a tensor's in elements, an array's in bytes
    off: Size | None = None  # a tensor's storage_offset (elements) or an array's offset_bytes
    dt: Label  # dtype
    es: Size | None = None  # element_size / itemsize, bytes
    lay: Label | None = None  # a tensor's torch layout
    br: Range | None = None  # byte_range in its storage
    sn: Size | None = None  # its storage's nbytes (None: no storage group known)


def of_entry(entry: TensorInfo | ArrayInfo, storage_nbytes: int | None) -> Layout:
    """The layout of a row as the worker reported it (already validated: constructed as is)."""
    if isinstance(entry, ArrayInfo):
        return Layout.model_construct(
            k="a",
            n=entry.name,
            shape=entry.shape,
            st=entry.strides,
            off=entry.offset_bytes,
            dt=entry.dtype,
            es=entry.itemsize,
            br=entry.byte_range,
            sn=storage_nbytes,
        )
    return Layout.model_construct(
        k="t",
        n=entry.name,
        shape=entry.shape,
        st=entry.stride,
        off=entry.storage_offset,
        dt=entry.dtype,
        es=entry.element_size,
        lay=entry.layout,
        br=entry.byte_range,
        sn=storage_nbytes,
    )


def encode(layout: Layout) -> str:
    return layout.model_dump_json(exclude_none=True)


def parse(text: str) -> Layout:
    """The layout a request carries; LayoutError when it is not JSON of that strict form."""
    if not text:
        raise LayoutError("field 'layout' is required: the diagram is drawn from the layout the page sent")
    if len(text) > LAYOUT_CHARS_MAX:
        raise LayoutError(f"field 'layout' is {len(text)} characters; the limit is {LAYOUT_CHARS_MAX}")
    try:
        # pydantic's own parser: bounded nesting (json.loads recursed 5,000 '[' deep into a
        # RecursionError), and strict, so a JSON true is no size and "3" is no int.
        return Layout.model_validate_json(text)
    except ValidationError as exc:
        raise LayoutError(f"field 'layout' is not a row's layout: {_first(exc)}") from None


def as_run(layout: Layout) -> RunResponse:
    """A one-row run holding that row (and its storage), for view_model.diagram_at(run, 0).
    Built without the schema's cross-field checks (a byte range that disagrees with the shape
    is drawn as the worker's would be: app.web.strides trusts none of it)."""
    storage = None if layout.sn is None else STORAGE_ID
    storages = []
    if layout.sn is not None:
        storages.append(StorageInfo.model_construct(id=STORAGE_ID, device="cpu", nbytes=layout.sn))
    if layout.k == "a":
        array = ArrayInfo.model_construct(
            name=layout.n,
            aliases=[],
            shape=layout.shape,
            dtype=layout.dt,
            strides=layout.st or [],
            itemsize=layout.es,
            offset_bytes=layout.off,
            storage=storage,
            byte_range=layout.br,
        )
        return RunResponse.model_construct(ok=True, tensors=[], arrays=[array], storages=storages)
    tensor = TensorInfo.model_construct(
        name=layout.n,
        aliases=[],
        shape=layout.shape,
        dtype=layout.dt,
        device="cpu",
        layout=layout.lay or "torch.strided",
        stride=layout.st,
        storage_offset=layout.off,
        element_size=layout.es or 0,
        storage=storage,
        byte_range=layout.br,
    )
    return RunResponse.model_construct(ok=True, tensors=[tensor], arrays=[], storages=storages)


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "layout"
    return f"{where}: {err['msg']}"[:200]
