"""The panels in a Jupyter notebook, in the user's own kernel: no sandbox, no server.

    %load_ext app.notebook          # registers the %%tensors cell magic

    %%tensors
    x = torch.arange(6).reshape(2, 3)
    y = x.t()

runs the cell in the notebook's own namespace, as a plain cell would (its names stay, its output
and errors show as the notebook shows them), and then shows the panels of what the namespace
holds: tensors, strides, shared storage, memory, the autograd graph, modules and the cell's module
calls. `%%tensors --steps` runs the cell with the page's step hooks (app.notebook.steps), and the
widget steps through its statements. A cell that raises still shows what existed when it failed,
and then fails (Run All stops there, as it would). `app.notebook.show()` shows the panels of the
current namespace, and `show({"a": a, "b": b})` those of any dict of objects. Names starting with
`_` and IPython's own (`In`, `Out`, `exit`, ...) are left out, as `%who` leaves them out.

Nothing here imports the web server (FastAPI, uvicorn): only the inspector, the public schema, the
view models and the templates (app.notebook.panels, app.notebook.display).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["load_ipython_extension", "show", "visible_names"]


def visible_names(namespace: Mapping[str, Any], hidden: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The user's names in a kernel's namespace: not `_`-names, not IPython's own (`hidden`:
    the shell's user_ns_hidden). `__name__` stays: it says which classes are the user's own."""
    hidden = hidden or {}
    kept = {k: v for k, v in namespace.items() if not k.startswith("_") and k not in hidden}
    return {"__name__": namespace.get("__name__", "__main__"), **kept}


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def show(obj: Mapping[str, Any] | None = None) -> Any:
    """Show the panels of `obj` (a dict of name -> object), or of the current namespace (None): the
    notebook's in a kernel, the caller's globals elsewhere. Displays them in IPython; returns the
    displayable Panels object outside it."""
    from app.notebook.display import Panels
    from app.notebook.panels import response_of

    shell = _shell()
    if obj is None:
        if shell is not None:
            obj = visible_names(shell.user_ns, shell.user_ns_hidden)
        else:
            obj = visible_names(sys._getframe(1).f_globals)
    elif not isinstance(obj, Mapping):
        raise TypeError(f"show() takes a dict of name -> object, not {type(obj).__name__}")
    shown = Panels(response_of(obj), names=sum(1 for k in obj if k != "__name__"))
    if shell is None:
        return shown
    from IPython.display import display

    display(shown)
    return None


def tensors_magic(line: str, cell: str) -> None:
    """%%tensors [--steps]: run the cell in the notebook's namespace, then show its panels;
    --steps: with the page's step hooks, so the widget steps through its statements."""
    from IPython.core.error import UsageError
    from IPython.display import display

    from app.notebook.display import Panels

    args = line.split()
    if any(a != "--steps" for a in args):
        raise UsageError(f"%%tensors takes only --steps, not {line.strip()!r}")
    shell = _shell()
    if args:
        resp, code = _stepped(shell, cell), shell.transform_cell(cell)
    else:
        resp, code = _plain(shell, cell), cell
    display(Panels(resp, code))
    if resp.error is not None:  # the traceback is shown above; fail the cell as a plain cell fails
        raise UsageError(f"the cell raised {resp.error.type}; the panels show what it had made by then")


def _plain(shell: Any, cell: str) -> Any:
    from app.inspector.calls import CallRecorder
    from app.notebook.panels import Ran, response_of
    from app.notebook.run import cell_error

    recorder = CallRecorder()
    started = time.perf_counter()
    with recorder:
        result = shell.run_cell(cell, store_history=False)  # as %%capture runs its cell
    ms = (time.perf_counter() - started) * 1000.0
    raised = result.error_before_exec or result.error_in_exec
    error = cell_error(raised, shell.user_ns) if raised is not None else None
    namespace = visible_names(shell.user_ns, shell.user_ns_hidden)
    return response_of(namespace, Ran(error, ms), calls=recorder)


def _stepped(shell: Any, cell: str) -> Any:
    from app.notebook.panels import public
    from app.notebook.steps import run_stepped

    payload, _raised = run_stepped(shell, cell, lambda: visible_names(shell.user_ns, shell.user_ns_hidden))
    return public(payload)


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext app.notebook`."""
    ipython.register_magic_function(tensors_magic, magic_kind="cell", magic_name="tensors")
