"""Key audit of the worker-to-public contract: walk a worker-side dict and the public model it
validated into side by side, and name every key found on one side only.

The public models ignore unknown keys (a worker's result is hostile input, never echoed), so a
key the worker sends that no model declares vanishes without an error; and a model field no
worker ever sends is dead or, worse, misspelt on one side. KeyAudit collects both.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


def wire_keys(cls: type[BaseModel]) -> dict[str, str]:
    """{key on the wire: attribute name} of a model (ModuleInfo's "class" is class_)."""
    return {(info.alias or name): name for name, info in cls.model_fields.items()}


def _models_in(annotation: Any) -> set[type[BaseModel]]:
    """The models an annotation names anywhere (list[X], X | None, dict[str, A | B], Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation}
    return set().union(*map(_models_in, typing.get_args(annotation)))


def reachable(root: type[BaseModel]) -> set[type[BaseModel]]:
    """Every model a root's fields lead to, the root included."""
    found, todo = {root}, [root]
    while todo:
        for info in todo.pop().model_fields.values():
            for model in _models_in(info.annotation) - found:
                found.add(model)
                todo.append(model)
    return found


@dataclass
class KeyAudit:
    seen: dict[type[BaseModel], set[str]] = field(default_factory=dict)  # keys sent, per model
    dropped: set[str] = field(default_factory=set)  # "Model.key": sent, but no field takes it

    def walk(self, raw: Any, value: Any) -> None:
        """`raw`: what the worker side built; `value`: what the public schema made of it."""
        if isinstance(value, BaseModel) and isinstance(raw, dict):
            self._model(raw, value)
        elif isinstance(value, list) and isinstance(raw, list):
            for raw_item, item in zip(raw, value, strict=True):
                self.walk(raw_item, item)
        elif isinstance(value, dict) and isinstance(raw, dict):
            # Keys here are data (hyperparameter names, storage ids); their values may be models.
            for key, item in value.items():
                self.walk(raw[key], item)

    def _model(self, raw: dict, model: BaseModel) -> None:
        cls = type(model)
        keys = wire_keys(cls)
        self.dropped |= {f"{cls.__name__}.{key}" for key in raw if key not in keys}
        self.seen.setdefault(cls, set()).update(key for key in raw if key in keys)
        for key, attr in keys.items():
            if key in raw:
                self.walk(raw[key], getattr(model, attr))

    def never_sent(self, root: type[BaseModel]) -> set[str]:
        """Each field ("Model.field") of a model reachable from `root` that no walked dict had."""
        return {
            f"{cls.__name__}.{key}"
            for cls in reachable(root)
            for key in wire_keys(cls)
            if key not in self.seen.get(cls, set())
        }


def shape_node_keys(trees: list) -> set[str]:
    """Every key of every node of these shape summaries (a call's input_shapes and output_shapes
    are JSON to the schema, not models: KeyAudit does not go into them)."""
    keys: set[str] = set()
    todo = list(trees)
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            keys.update(node)
            todo.extend(node.get("items", []))
    return keys
