"""HTTP side of scripts/image-check.sh: talks to the container under test. Standard library
only (it runs on the host before or without the project's virtualenv).

    python3 scripts/image_check.py port                  # print a free TCP port
    python3 scripts/image_check.py health PORT           # print pool state and confinement
    python3 scripts/image_check.py snippet PORT          # a transpose must share x's storage
    python3 scripts/image_check.py uid PORT EXPECTED     # snippets run as this uid
    python3 scripts/image_check.py page PORT             # the page draws a graph with dot

Each check prints what it saw and exits 1 with the reason when the answer is wrong.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: tests.ports
from tests.ports import free_port

TRANSPOSE = "import torch\nx = torch.arange(6.).reshape(2, 3)\ny = x.t()\n"
WHOAMI = "import os\nprint(os.getuid())\n"
AUTOGRAD = "import torch\nw = torch.ones(2, requires_grad=True)\nloss = (w * 3).sum()\n"


def fail(message: str) -> None:
    raise SystemExit(f"image check: {message}")


def get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.load(response)


def run(port: int, code: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/run",
        data=json.dumps({"code": code}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result = json.load(response)
    if not result.get("ok"):
        fail(f"snippet failed: {json.dumps(result.get('error'))}")
    return result


def port() -> None:
    print(free_port())


def health(port: int) -> None:
    body = get(port, "/api/health")
    pool = body.get("pool", {})
    print(
        f"  health ok={body.get('ok')} state={pool.get('state')} "
        f"max_concurrent_runs={pool.get('max_concurrent_runs')}"
    )
    print(f"  uid drop: {json.dumps(pool.get('uid_drop'))}")
    confinement = pool.get("confinement")
    if confinement is None:
        print("  confinement layers: not reported by this version")
    else:
        print(f"  confinement layers active: {', '.join(confinement.get('active', [])) or 'none'}")
        for name, why in (confinement.get("missing") or {}).items():
            print(f"  confinement layer missing: {name}: {why}")
    if not body.get("ok"):
        fail("/api/health says the pool is not ready")


def snippet(port: int) -> None:
    result = run(port, TRANSPOSE)
    tensors = {t["name"]: t for t in result["tensors"]}
    if set(tensors) != {"x", "y"}:
        fail(f"expected tensors x and y, got {sorted(tensors)}")
    x, y = tensors["x"], tensors["y"]
    print(
        f"  x stride={x['stride']} storage={x['storage']}; "
        f"y stride={y['stride']} storage={y['storage']} contiguous={y['is_contiguous']}"
    )
    if x["storage"] is None or x["storage"] != y["storage"]:
        fail("x.t() should share x's storage")
    if y["stride"] != list(reversed(x["stride"])) or y["is_contiguous"]:
        fail("x.t() should have x's strides reversed and not be contiguous")


def uid(port: int, expected: int) -> None:
    seen = run(port, WHOAMI)["stdout"]["text"].strip()
    print(f"  snippet uid: {seen}")
    if seen != str(expected):
        fail(f"snippets should run as uid {expected}, not {seen}")


def page(port: int) -> None:
    """The no-JavaScript form post renders the full page, autograd graph included: Graphviz's
    dot must be installed and runnable by the server's user."""
    form = urllib.parse.urlencode({"code": AUTOGRAD}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=form, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        html = response.read().decode("utf-8", "replace")
    drawn = html.count('class="graph-svg"')
    print(f"  page: {len(html)} bytes of HTML, {drawn} graph drawn by dot")
    if not drawn:
        fail("the page has no autograd graph SVG (is graphviz's dot in the image?)")


def main(argv: list[str]) -> None:
    commands: dict[str, tuple[Callable[..., None], int]] = {
        "port": (port, 0),
        "health": (health, 1),
        "snippet": (snippet, 1),
        "uid": (uid, 2),
        "page": (page, 1),
    }
    if not argv or argv[0] not in commands or len(argv) - 1 != commands[argv[0]][1]:
        raise SystemExit(__doc__)
    func, _ = commands[argv[0]]
    func(*map(int, argv[1:]))


if __name__ == "__main__":
    main(sys.argv[1:])
