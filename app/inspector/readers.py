"""torch's and numpy's own readers, captured when the inspector is imported (in the zygote, before
any snippet runs), so a snippet that patches them cannot make the inspector lie or crash.

A snippet owns its process: `torch.Tensor.stride = lambda self, *a: (999,)` or a patched
`torch.UntypedStorage.data_ptr` replaces what `t.stride()` or `s.data_ptr()` finds, and a tensor
or ndarray subclass may override any attribute. The C types underneath (torch._C.TensorBase,
torch._C.StorageBase, numpy.ndarray) are immutable, and the descriptors taken from their
__dict__ here call the C implementation whatever the class of the object or the state of the
`torch` namespace later. Type tests go by the object's real type (`type()` cannot be lied to,
`isinstance` asks the object's own `__class__`). Functions of the torch namespace are kept as the
builtins they were at import. While the inspector reads (app.inspector.encoder.reading) torch
functions and dispatch modes a snippet left active are switched off, so no tensor operation here
runs the snippet's `__torch_function__` or `__torch_dispatch__`.
"""

from __future__ import annotations

import types
from collections import deque
from typing import Any

import numpy as np
import torch

from . import budget

_T = torch._C.TensorBase.__dict__
_S = torch._C.StorageBase.__dict__
_A = np.ndarray.__dict__
_VF = torch._C._VariableFunctions


def _getter(table: Any, name: str) -> Any:
    return table[name].__get__  # a getset descriptor's get, bound: getter(obj)


# ---- tensor metadata (method descriptors are called as f(t, *args)) ----
dim = _T["dim"]
size = _T["size"]
stride = _T["stride"]
storage_offset = _T["storage_offset"]
is_contiguous = _T["is_contiguous"]
untyped_storage = _T["untyped_storage"]
element_size = _T["element_size"]
numel = _T["numel"]
is_conj = _T["is_conj"]
is_neg = _T["is_neg"]
is_inference = _T["is_inference"]
is_view = _T["_is_view"]
is_complex = _T["is_complex"]
data_ptr = _T["data_ptr"]  # an address to compare, never to read
shape = _getter(_T, "shape")
dtype = _getter(_T, "dtype")
device = _getter(_T, "device")
layout = _getter(_T, "layout")
requires_grad = _getter(_T, "requires_grad")
grad = _getter(_T, "_grad")  # .grad without the non-leaf warning
grad_fn = _getter(_T, "grad_fn")
version = _getter(_T, "_version")
base = _getter(_T, "_base")
is_leaf = _getter(_T, "is_leaf")
retains_grad = _getter(_T, "retains_grad")
is_nested = _getter(_T, "is_nested")
is_meta = _getter(_T, "is_meta")
is_quantized = _getter(_T, "is_quantized")
is_cpu = _getter(_T, "is_cpu")

# ---- tensor values ----
detach = _T["detach"]
to_dense = _T["to_dense"]
cpu = _T["cpu"]
to = _T["to"]
double = _T["double"]
float_ = _T["float"]
dequantize = _T["dequantize"]
resolve_conj = _T["resolve_conj"]
resolve_neg = _T["resolve_neg"]
to_numpy = _T["numpy"]
item = _T["item"]
tolist = _T["tolist"]
reshape = _T["reshape"]
view = _T["view"]
getitem = _T["__getitem__"]
mean = _T["mean"]
std = _T["std"]
tensor_sum = _T["sum"]
set_ = _T["set_"]
clone = _T["clone"]
cat = _VF.cat
arange = _VF.arange
empty = _VF.empty
tensor = torch.tensor
isfinite = _VF.isfinite
isnan = _VF.isnan
aminmax = _VF.aminmax
stack = _VF.stack
remainder = _VF.remainder
div = _VF.div

# ---- storages ----
storage_data_ptr = _S["data_ptr"]
storage_nbytes = _S["nbytes"]

# ---- numpy ----
a_shape = _getter(_A, "shape")
a_strides = _getter(_A, "strides")
a_dtype = _getter(_A, "dtype")
a_itemsize = _getter(_A, "itemsize")
a_nbytes = _getter(_A, "nbytes")
a_size = _getter(_A, "size")
a_base = _getter(_A, "base")
a_flags = _getter(_A, "flags")
a_interface = _getter(_A, "__array_interface__")
a_view = _A["view"]
a_getitem = _A["__getitem__"]
a_astype = _A["astype"]
a_tolist = _A["tolist"]
a_reshape = _A["reshape"]
a_tobytes = _A["tobytes"]
np_array = np.array
np_intp = np.intp

# ---- types, by the object's real type ----
is_subtype = type.__dict__["__subclasscheck__"]  # is_subtype(base, cls): PyType_IsSubtype
_type_name = type.__dict__["__name__"].__get__
_type_module = type.__dict__["__module__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
Tensor = torch.Tensor
TensorBase = torch._C.TensorBase
Parameter = torch.nn.Parameter
Module = torch.nn.Module
Optimizer = torch.optim.Optimizer
ndarray = np.ndarray
is_lazy_class = vars(torch.nn.parameter)["UninitializedTensorMixin"]  # not in torch's parameter.pyi
_ROUTINES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.BuiltinMethodType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    types.MethodWrapperType,
)


named_parameters = torch.nn.Module.named_parameters
named_buffers = torch.nn.Module.named_buffers
named_modules = torch.nn.Module.named_modules
named_children = torch.nn.Module.named_children
state_dict = torch.nn.Module.state_dict
EXCEPTION_TEXT_CHARS = 200


def type_name(cls: type) -> str:
    """A class's own __name__ (a metaclass cannot answer for it)."""
    name = _type_name(cls)
    return name if type(name) is str else "?"


def type_module(cls: type) -> Any:
    return _type_module(cls)


def class_attribute(cls: type, name: str) -> Any:
    """`name` as the class's real MRO defines it (raw: no descriptor or metaclass runs), or None."""
    for klass in _type_mro(cls):
        found = _type_dict(klass)
        if name in found:
            return found[name]
    return None


def exception_text(exc: BaseException) -> str:
    """`Type: message` of an exception the snippet's code raised, shortened; its __str__ may
    raise anything too."""
    try:
        message = str(exc)
    except BaseException as err:  # a broken __str__ is the snippet's
        budget.absorb(err)
        message = "<str() failed>"
    if len(message) > EXCEPTION_TEXT_CHARS:
        message = message[:EXCEPTION_TEXT_CHARS] + "…"
    return f"{type_name(type(exc))}: {message}"


def is_a(obj: Any, cls: type) -> bool:
    """isinstance by the real type: no `__class__` or `__instancecheck__` of the snippet's runs."""
    return is_subtype(cls, type(obj))


def is_tensor(obj: Any) -> bool:
    return is_subtype(TensorBase, type(obj))


def is_parameter(t: Any) -> bool:
    return is_subtype(Parameter, type(t))


def is_lazy(t: Any) -> bool:
    """LazyLinear & co.'s placeholders (torch.nn.parameter.is_lazy, by the real type)."""
    return is_subtype(is_lazy_class, type(t))


def is_ndarray(obj: Any) -> bool:
    return is_subtype(ndarray, type(obj))


def is_routine_module_or_class(obj: Any) -> bool:
    """inspect.ismodule/isclass/isroutine by the real type (inspect asks `__class__`)."""
    kind = type(obj)
    return (
        is_subtype(type, kind)
        or is_subtype(types.ModuleType, kind)
        or any(is_subtype(r, kind) for r in _ROUTINES)
    )


def is_container(obj: Any) -> bool:
    kind = type(obj)
    return (
        is_subtype(dict, kind) or is_subtype(list, kind) or is_subtype(tuple, kind) or is_subtype(deque, kind)
    )


def leaf_grad(t: Any) -> Any:
    """.grad of a leaf (or a non-leaf that retains it), read without torch's warning."""
    return grad(t) if (is_leaf(t) or retains_grad(t)) else None


_dispatch_keys = torch._C._dispatch_keys
_has_key = torch._C.DispatchKeySet.has
_PYTHON_KEY = torch._C.DispatchKey.Python


def has_python_dispatch(t: Any) -> bool:
    """A tensor of the snippet's own wrapper subclass, whose operations go to its
    `__torch_dispatch__`: reading its values would run the snippet's code (or, with that switched
    off, read no real memory). torch's own subclasses (jagged nested tensors) are not."""
    kind = type(t)
    if kind is Tensor or kind is Parameter:
        return False  # plain tensors never carry the Python key
    module = _type_module(kind)
    if type(module) is str and module.startswith("torch."):
        return False
    return bool(_has_key(_dispatch_keys(t), _PYTHON_KEY))


def plain_array(a: np.ndarray) -> np.ndarray:
    """A base-class view of an ndarray (subclass): its methods are numpy's own. (A numpy
    scalar becomes a 0-d array.)"""
    if type(a) is ndarray:
        return a
    return a_view(a, ndarray) if is_ndarray(a) else np_array(a)


# ---- while reading: no snippet code behind a tensor operation ----
_DisableTorchFunction = torch._C.DisableTorchFunction
_len_dispatch_stack = torch._C._len_torch_dispatch_stack
_pop_dispatch_stack = torch._C._pop_torch_dispatch_stack
_push_dispatch_stack = torch._C._push_on_torch_dispatch_stack


class torch_unhooked:  # lowercase: a context manager, used as `with torch_unhooked():`
    """No `__torch_function__` (subclasses, modes) and no user `__torch_dispatch__` mode while
    the inspector reads; the snippet's modes are pushed back afterwards, in their order. (A
    class: entered at every step, a generator-based one cost a few us more.)"""

    def __enter__(self) -> None:
        self.modes = []
        try:
            for _ in range(_len_dispatch_stack()):
                self.modes.append(_pop_dispatch_stack(None))
        except Exception:  # an infra mode this build pops otherwise: leave the rest
            pass
        self.disabled = _DisableTorchFunction()
        self.disabled.__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            self.disabled.__exit__(None, None, None)
        finally:
            for mode in reversed(self.modes):
                _push_dispatch_stack(mode)
