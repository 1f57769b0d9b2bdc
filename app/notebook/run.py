"""What a notebook cell raised, in the panels' error shape (the payload's, app.sandbox.runner).

The line is the cell's own: the innermost traceback frame in the cell's code (a function the cell
defined counts; torch's and IPython's frames do not). The cell's code is the frame IPython runs
at the top level of the notebook's namespace (`<module>` with user_ns as its globals), and its
file name picks out the cell's other frames.
"""

from __future__ import annotations

from typing import Any

from app.notebook.panels import CellError
from app.schema_rules import LABEL_CHARS_MAX

# Of the message, shown in the status card: the notebook shows the whole traceback itself.
MESSAGE_CHARS_MAX = 8192


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cell_error(exc: BaseException, user_ns: dict[str, Any]) -> CellError:
    kind = _cut(type(exc).__name__, LABEL_CHARS_MAX)
    if isinstance(exc, SyntaxError):
        return CellError(kind, _cut(exc.msg or str(exc), MESSAGE_CHARS_MAX), exc.lineno)
    return CellError(kind, _cut(str(exc), MESSAGE_CHARS_MAX), cell_line(exc.__traceback__, user_ns))


def cell_line(tb: Any, user_ns: dict[str, Any]) -> int | None:
    cell_file = None
    line = None
    while tb is not None:
        frame = tb.tb_frame
        code = frame.f_code
        if cell_file is None and code.co_name == "<module>" and frame.f_globals is user_ns:
            cell_file = code.co_filename
        if cell_file is not None and code.co_filename == cell_file:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
