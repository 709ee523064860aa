"""The twins' Parameters sections written from their signatures: one description per option
name, shared by the classes and functions that take it, and the defaults read from the
signature, so that a documented default cannot drift from the real one."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["with_parameters"]

T = TypeVar("T")

_SECTIONS = ("Returns", "Raises", "See Also", "Notes", "References", "Examples")


def _default(value: Any) -> str:
    if value is None:
        return "optional"
    return "default " + (json.dumps(value) if isinstance(value, str) else repr(value))


def with_parameters(descriptions: Mapping[str, tuple[str, str]]) -> Callable[[T], T]:
    """Insert a Parameters section into the docstring of a function or class (its
    ``__init__``'s parameters): ``descriptions`` maps each name to (type, description)."""

    def decorate(obj: T) -> T:
        target: Any = obj.__init__ if inspect.isclass(obj) else obj
        lines = ["Parameters", "----------"]
        for name, parameter in inspect.signature(target).parameters.items():
            if name == "self":
                continue
            kind, text = descriptions[name]
            if parameter.default is not inspect.Parameter.empty:
                kind = f"{kind}, {_default(parameter.default)}"
            lines += [f"{name} : {kind}", *(f"    {line}" for line in text.splitlines())]
        doc = inspect.cleandoc(obj.__doc__ or "")
        heads = [doc.find(f"\n{head}\n---") for head in _SECTIONS]
        at = min((i for i in heads if i >= 0), default=len(doc))
        obj.__doc__ = doc[:at].rstrip("\n") + "\n\n" + "\n".join(lines) + "\n" + doc[at:] + "\n"
        return obj

    return decorate
