"""XML elements read as data shaped by a contract's fields (the HTTP gateway's XML bodies, XML
drop folders).

An element with children becomes an object, repeated elements a list, text a string (pydantic
then validates it as the contract's field, e.g. "3" as an int). XML cannot tell one item of a
list from a single value: ``<tags>a</tags>`` reads the same whether ``tags`` is ``str`` or
``list[str]``. So the data is shaped by the contract: under a list (tuple, set) field a single
element becomes a one-element list and an empty element (``<tags/>``) an empty one; a nested
model's fields, and each model of a list of them, are shaped the same way.
"""

from __future__ import annotations

import collections.abc
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

_SEQUENCES = {
    list,
    tuple,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Set,
    collections.abc.MutableSet,
}


def element_data(element: Any) -> Any:
    """An ElementTree element's children as an object (repeated ones as a list), or its text."""
    children = list(element)
    if not children:
        return (element.text or "").strip()
    data: dict[str, Any] = {}
    for child in children:
        value = element_data(child)
        if child.tag in data:
            existing = data[child.tag]
            data[child.tag] = (
                [*existing, value] if isinstance(existing, list) else [existing, value]
            )
        else:
            data[child.tag] = value
    return data


def shaped(data: Any, model: type[BaseModel]) -> Any:
    """``data`` read from XML, each field's value in the shape ``model`` declares for it."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name, field in model.model_fields.items():
        for key in {name, field.alias or name}:
            if key in out:
                out[key] = _shape(out[key], field.annotation)
    return out


def _shape(value: Any, annotation: Any) -> Any:
    annotation = _unwrapped(annotation)
    origin = get_origin(annotation) or (annotation if annotation in _SEQUENCES else None)
    if origin in _SEQUENCES:
        args = [arg for arg in get_args(annotation) if arg is not Ellipsis]
        item = args[0] if len(args) == 1 else Any  # tuple[int, str]: items of several types
        if value == "":  # <tags/>: no item at all
            return []
        items = value if isinstance(value, list) else [value]
        return [_shape(one, item) for one in items]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return shaped(value, annotation)
    return value


def _unwrapped(annotation: Any) -> Any:
    """``X`` of ``Annotated[X, ...]`` and of ``X | None``; any other union as it is."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            arms = [arm for arm in get_args(annotation) if arm is not type(None)]
            if len(arms) != 1:
                return annotation
            annotation = arms[0]
        else:
            return annotation
