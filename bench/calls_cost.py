"""What recording module calls (app.inspector.calls) costs: run_snippet in process, each snippet
with the recorder and without it (the runner's _call_recorder switched off), plain and traced.
Prints figures, asserts nothing.

    .venv/bin/python bench/calls_cost.py [--rounds 15] [--only "lesson mix"]

Snippets: "lesson mix" (every lesson example, one after another: one round is all of them),
"no module" (tensor work only: the recorder is installed and never called), and for scale, not
for the goal, "training loop" (an MLP trained 50 steps: every line calls modules) and "cnn"
(a small CNN's forward over a batch, ten times).
Goals (issue #18): recording adds at most 5 % to a plain run of the lesson mix and at most 10 % to
a traced one, and about nothing to a snippet calling no module. Times are CPU times of this
process (time.process_time, torch on one thread), which other load on a shared box leaves alone
far better than wall time; each snippet's runs alternate with/without (a GC pass before each),
and the sums of each snippet's medians are compared.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NO_MODULE = """\
import torch
x = torch.randn(64, 64)
for i in range(20):
    y = (x @ x.t()).relu()
    z = y[::2].contiguous().sum(0)
"""
TRAINING_LOOP = """\
import torch
import torch.nn as nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
x = torch.randn(64, 16)
y = torch.randint(0, 4, (64,))
for epoch in range(50):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
"""
CNN = """\
import torch
import torch.nn as nn
model = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
)
x = torch.randn(8, 3, 32, 32)
for i in range(10):
    out = model(x)
"""


def lessons() -> list[str]:
    from app.examples import EXAMPLES

    return [textwrap.dedent(e.code) for e in EXAMPLES]


def median_ms(
    codes: list[str], run: Callable[[str], None], switch: Callable[[bool], None], rounds: int
) -> tuple[float, float]:
    """(ms without recording, with): the sum over `codes` of each one's median, its runs with
    and without alternating (which goes first alternates too), a GC pass before each."""
    totals = {False: 0.0, True: 0.0}
    for code in codes:
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(rounds):
            for on in (i % 2 == 0, i % 2 != 0):
                switch(on)
                gc.collect()
                started = time.process_time()
                run(code)
                times[on].append((time.process_time() - started) * 1000.0)
        for on in totals:
            totals[on] += statistics.median(times[on])
    switch(True)
    return totals[False], totals[True]


def _install_us(times: int = 2000) -> float:
    """What recording costs a snippet that calls no module: the hooks never run."""
    from app.inspector.calls import CallRecorder

    started = time.process_time()
    for _ in range(times):
        with CallRecorder() as recorder:
            pass
        recorder.section()
    return (time.process_time() - started) / times * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", action="append", help="a snippet's name (repeatable); default: all")
    args = parser.parse_args()

    import torch

    import app.sandbox.runner as runner
    from app.sandbox.limits import SandboxLimits

    torch.set_num_threads(1)  # CPU time then is the snippet's work, not idle threads spinning

    real = runner._call_recorder

    def switch(on: bool) -> None:
        runner._call_recorder = real if on else (lambda tracer: None)

    install_us = _install_us()
    print(f"recorder installed, removed and read with no module called: {install_us:.1f} us per run")
    limits = SandboxLimits(exec_timeout_s=30.0)
    snippets = {
        "lesson mix": lessons(),
        "no module": [NO_MODULE],
        "training loop": [TRAINING_LOOP],
        "cnn": [CNN],
    }
    print(f"{'snippet':<14} {'mode':<7} {'without ms':>11} {'with ms':>9} {'added':>7}  (CPU ms, median)")
    for name, codes in snippets.items():
        if args.only and name not in args.only:
            continue
        for mode, trace in (("plain", None), ("traced", {"states": True})):

            def run(code: str, trace: dict | None = trace) -> None:
                runner.run_snippet(code, limits, trace=trace)

            for code in codes:
                run(code)  # warm: first calls pay torch's and the inspector's lazy paths
            without, with_ = median_ms(codes, run, switch, args.rounds)
            print(f"{name:<14} {mode:<7} {without:>11.2f} {with_:>9.2f} {100 * (with_ / without - 1):>6.1f}%")


if __name__ == "__main__":
    main()
