"""Config keys as the file reads them, for error messages: lists count from 1, an entry is named
by its title, and a misspelt key comes with the key it was probably meant to be."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from orsync.text import line_problem


def _shown(name: object) -> bool:
    """A name fit to point at its entry: one short clean line (a blank or hostile title is the
    error itself, and the index alone names the entry)."""
    return (
        isinstance(name, str) and bool(name.strip()) and len(name) <= 60 and not line_problem(name)
    )


def key_name(loc: tuple[int | str, ...], data: Any = None) -> str:
    """A key as the config file reads it: lists count from 1 (``program.slots[2]`` is the second
    slot written), and an entry with a title, name or id is named by it, so the chair finds it."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            label = f"[{item + 1}]"
            entry = data[item] if isinstance(data, list) and 0 <= item < len(data) else None
            name = next(
                (
                    entry[k]
                    for k in ("title", "name", "id")
                    if isinstance(entry, dict) and _shown(entry.get(k))
                ),
                None,
            )
            if name is not None:
                label += f" ({name!r})" if '"' in name else f' ("{name}")'
            parts[-1:] = [f"{parts[-1]}{label}"] if parts else [label]
            data = entry
        else:
            parts.append(item)
            data = data.get(item) if isinstance(data, dict) else None
    return ".".join(parts)


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The config section a key path points into (list indexes skipped), for its valid keys."""
    model = root
    for item in loc:
        if isinstance(item, int):
            continue
        field = model.model_fields.get(item)
        if field is None:
            return None
        found = _model_in(field.annotation)
        if found is None:
            return None
        model = found
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def unknown_key(root: type[BaseModel], loc: tuple[int | str, ...], data: Mapping[str, Any]) -> str:
    """The message for a key no section has, with the key it was probably meant to be."""
    key = key_name(loc, data)
    name = loc[-1]
    model = _model_at(root, loc[:-1])
    close = (
        difflib.get_close_matches(
            str(name), [k for k, field in model.model_fields.items() if not field.exclude], n=1
        )
        if model is not None
        else []
    )
    hint = f"did you mean {close[0]}?" if close else "check its spelling"
    return f"unknown key {key}; {hint}"
