"""Output as a terminal shows it, for the output panel.

A progress bar (tqdm) redraws its line in place: it writes `\\r` and the new bar, over and over,
so the raw stream of a 100-step loop holds 100 bars on one line. A terminal shows only the last:
`\\r` moves the cursor back to the line's start. The panel does the same, for stdout and stderr:
of each line, only the last redraw stays (an empty one, as in a trailing `\\r` or a `\\r\\n`
ending, erases nothing). tqdm pads every redraw to the length of the one before, so keeping the
last is what the terminal's overwrite shows. The raw API output (`stdout.text`) is unchanged.
"""

from __future__ import annotations

SHOWN_CHARS = 256 * 1024  # of one stream: the worker keeps 64 KiB, a forged result may claim 16 MiB


def terminal_text(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text` as a terminal would leave it. Reads at most `limit` characters; linear in them (each
    line is split once and one piece of it kept), so the result is never longer than the input."""
    shown = []
    for line in text[:limit].split("\n"):
        redraws = line.split("\r")
        shown.append(next((r for r in reversed(redraws) if r), ""))
    return "\n".join(shown)
