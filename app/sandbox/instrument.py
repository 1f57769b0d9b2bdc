"""The step-through's rewrite of a snippet: hook calls inserted into its AST (app.sandbox.trace
says what the hooks record), and the same rewrite compiled ahead of time by the server.

Where each hook goes:
* after every top-level statement: one step;
* inside a top-level `with` or `if`: after every statement of the body that runs, so the lessons'
  `with torch.no_grad():` blocks are stepped line by line and show grad mode no_grad;
* a top-level `for`/`while`: its body is wrapped in try/except/finally; the finally calls the
  hook, one step per iteration (`continue` and `break` included), unless the except saw the body
  raise; after the loop, one more hook. The body runs as a copy with a hook after each statement
  (sites naming the loop as `parent`) while `__tp_body__[loop]` is true, i.e. in the first
  iterations (app.sandbox.trace), and as written after that: a hook per statement in every
  iteration cost a 300k-iteration loop 77 ms. A loop inside a loop body is one statement.
* inside a top-level `try` (its body, `else:` and `finally:`) and `match` case bodies: as for
  `with`; and first thing in every `except` handler a hook that records the statement that
  raised (a "caught" step), so stepping shows where the jump to the handler came from.
The snippet's own nodes keep their locations, so line numbers are the original ones.

Ahead of time: parsing, rewriting and compiling cost a freshly forked worker ~2.3 ms of a 50-line
snippet (most of it first-touch page faults: the parser's memory is new to that process), the
warm server ~0.7 ms. So the pool compiles a traced snippet (precompile) and sends the code object
marshalled with the job; the worker only unmarshals it (~0.15 ms, load). Compiling is not
running: no snippet code executes in the server. Whatever precompile cannot do exactly as the
worker would (a syntax error, a compile-time warning the snippet's stderr must show, another
Python's marshal format), or should not do on the server's event loop (a snippet over the size
bounds below), is left to the worker, which then compiles as before.

Precompiled job field: {"magic": importlib.util.MAGIC_NUMBER as hex, "code": base64 of
marshal.dumps(code object), "sites": [[start_line, end_line, loop, has_else, parent], ...]}.
"""

from __future__ import annotations

import ast
import base64
import binascii
import copy
import importlib.util
import marshal
import warnings
from dataclasses import dataclass
from types import CodeType
from typing import Any, TypedDict

FILENAME = "<snippet>"
STEP_HOOK, ITER_HOOK, LOOP_END_HOOK = "__tp_step__", "__tp_iteration__", "__tp_loop_end__"
CAUGHT_HOOK, RAISED_HOOK, BODY_FLAGS = "__tp_caught__", "__tp_raised__", "__tp_body__"
HOOKS = (STEP_HOOK, ITER_HOOK, LOOP_END_HOOK, CAUGHT_HOOK, RAISED_HOOK, BODY_FLAGS)
_TRY = (ast.Try, ast.TryStar) if hasattr(ast, "TryStar") else (ast.Try,)
# Compiling blocks the server's event loop (the parser and compiler hold the GIL): ~20 us per
# statement, ~1.2 ms per KiB of one long expression, measured. Past these bounds (a few ms at
# most; a lesson is ~60 lines) the worker compiles, as it always could.
PRECOMPILE_MAX_BYTES = 4 * 1024
PRECOMPILE_MAX_STATEMENTS = 300  # lines and semicolons: a cheap upper bound
_MAGIC = importlib.util.MAGIC_NUMBER.hex()


@dataclass
class Site:
    start_line: int
    end_line: int
    loop: bool = False
    has_else: bool = False
    parent: int | None = None  # the loop whose body this statement is in (its site index)
    iterations: int = 0  # runs of the body so far
    stepped: int = 0  # iteration number of its latest step
    raised: bool = False  # the body is raising: its iteration did not complete


# ---- the AST rewrite ----------------------------------------------------------------------------
def instrument(tree: ast.Module) -> list[Site]:
    """Insert hook calls into `tree` in place; returns the sites, indexed by the hooks' argument."""
    sites: list[Site] = []
    tree.body = _block(tree.body, sites)
    return sites


class _Loc(TypedDict):
    """The location every inserted node carries (typed, so the node constructors accept it)."""

    lineno: int
    end_lineno: int
    col_offset: int
    end_col_offset: int


def _at(line: int) -> _Loc:
    return {"lineno": line, "end_lineno": line, "col_offset": 0, "end_col_offset": 0}


def _hook(name: str, sid: int, at: ast.stmt | ast.excepthandler, line: int | None = None) -> ast.stmt:
    # At the statement's last line: a TimeLimit raised in the hook points at that statement.
    # Every node gets its location here, so no fix_missing_locations pass over the whole tree.
    line = line or at.end_lineno or at.lineno
    loc = _at(line)
    return ast.Expr(ast.Call(ast.Name(name, ast.Load(), **loc), [ast.Constant(sid, **loc)], [], **loc), **loc)


def _block(body: list[ast.stmt], sites: list[Site], loop: int | None = None) -> list[ast.stmt]:
    """`loop`: the site of the loop whose body this is (or is nested in), else None."""
    out: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            out.append(stmt)  # must stay first: no hook call before the next one
        elif isinstance(stmt, ast.With):
            stmt.body = _block(stmt.body, sites, loop)
            out.append(stmt)
        elif isinstance(stmt, ast.If):
            stmt.body = _block(stmt.body, sites, loop)
            stmt.orelse = _block(stmt.orelse, sites, loop) if stmt.orelse else []
            out.append(stmt)
        elif isinstance(stmt, _TRY):
            _try(stmt, sites, loop)
            out.append(stmt)
        elif isinstance(stmt, ast.Match):
            for case in stmt.cases:
                case.body = _block(case.body, sites, loop)
            out.append(stmt)
        elif isinstance(stmt, (ast.For, ast.While)) and loop is None:
            out += _loop(stmt, sites)
        else:
            sid = len(sites)
            sites.append(Site(stmt.lineno, stmt.end_lineno or stmt.lineno, parent=loop))
            out += [stmt, _hook(STEP_HOOK, sid, stmt)]
    return out


def _loop(stmt: ast.For | ast.While, sites: list[Site]) -> list[ast.stmt]:
    sid = len(sites)
    sites.append(Site(stmt.lineno, stmt.end_lineno or stmt.lineno, loop=True, has_else=bool(stmt.orelse)))
    first, last = stmt.body[0], stmt.body[-1]
    loc = _at(first.lineno)
    flag = ast.Subscript(ast.Name(BODY_FLAGS, ast.Load(), **loc), ast.Constant(sid, **loc), ast.Load(), **loc)
    stepped = _block(copy.deepcopy(stmt.body), sites, sid)
    raised = ast.ExceptHandler(None, None, [_hook(RAISED_HOOK, sid, last), ast.Raise(**loc)], **loc)
    wrapper = ast.Try(
        body=[ast.If(flag, stepped, stmt.body, **loc)],
        handlers=[raised],
        orelse=[],
        finalbody=[_hook(ITER_HOOK, sid, last)],
        **loc,
    )
    stmt.body = [wrapper]
    return [stmt, _hook(LOOP_END_HOOK, sid, stmt)]


def _try(stmt: ast.Try | ast.TryStar, sites: list[Site], loop: int | None) -> None:
    stmt.body = _block(stmt.body, sites, loop)
    for handler in stmt.handlers:
        sid = len(sites)  # the handler's own site: its `except` line
        sites.append(Site(handler.lineno, handler.lineno, parent=loop))
        handler.body = [
            _hook(CAUGHT_HOOK, sid, handler, line=handler.lineno),
            *_block(handler.body, sites, loop),
        ]
    stmt.orelse = _block(stmt.orelse, sites, loop) if stmt.orelse else []
    stmt.finalbody = _block(stmt.finalbody, sites, loop) if stmt.finalbody else []


def compile_traced(code: str, optimize: int = -1) -> tuple[CodeType, list[Site]]:
    """The snippet compiled with its hooks, and the sites the hooks' arguments index. Raises what
    ast.parse / compile raise."""
    tree = ast.parse(code, FILENAME)
    sites = instrument(tree)
    return compile(tree, FILENAME, "exec", dont_inherit=True, optimize=optimize), sites


def precompile(code: str) -> dict[str, Any] | None:
    """Server side: the job's "precompiled" field for `code`, or None to leave it to the worker."""
    if len(code) > PRECOMPILE_MAX_BYTES or code.count("\n") + code.count(";") > PRECOMPILE_MAX_STATEMENTS:
        return None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # optimize=0: the worker's level (its interpreter runs without -O, whatever ours does)
            compiled, sites = compile_traced(code, optimize=0)
    except Exception:  # a syntax error, deep nesting...: the worker reports it
        return None
    if caught:  # SyntaxWarning & co. belong on the snippet's stderr: the worker compiles again
        return None
    return {
        "magic": _MAGIC,
        "code": base64.b64encode(marshal.dumps(compiled)).decode("ascii"),
        "sites": [[s.start_line, s.end_line, s.loop, s.has_else, s.parent] for s in sites],
    }


def load(precompiled: Any) -> tuple[CodeType, list[Site]] | None:
    """Worker side: the code object and sites of a precompiled job, or None when unusable."""
    if not isinstance(precompiled, dict) or precompiled.get("magic") != _MAGIC:
        return None
    try:
        compiled = marshal.loads(base64.b64decode(precompiled["code"], validate=True))
        sites = [
            Site(int(a), int(b), bool(loop), bool(has_else), None if parent is None else int(parent))
            for a, b, loop, has_else, parent in precompiled["sites"]
        ]
    except (KeyError, TypeError, ValueError, EOFError, binascii.Error):
        return None
    return (compiled, sites) if isinstance(compiled, CodeType) else None
