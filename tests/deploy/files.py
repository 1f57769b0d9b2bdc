"""Readers for the deployment files the tests check: the Dockerfile's instructions and the
Kubernetes manifest's documents."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
MANIFEST = ROOT / "deploy" / "kubernetes.yaml"


def instructions(text: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text() if text is None else text
    result, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, args = whole.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def args_of(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def env() -> dict[str, str]:
    """Every ENV of the final image (KEY=VALUE form), later ones winning."""
    values: dict[str, str] = {}
    for args in args_of("ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            values[key] = value
    return values


def manifests() -> dict[str, dict]:
    """The manifest's documents by kind (one Deployment, one Service)."""
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return {d["kind"]: d for d in docs}


def container() -> dict:
    (only,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def container_env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in container().get("env", [])}


def quantity_mib(text: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    raise ValueError(f"write memory quantities with a binary suffix (Mi, Gi): {text!r}")


def quantity_cpu(text: str) -> float:
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
