"""Nested dataclasses from plain mappings (parsed YAML), with every key and value checked.

An unknown key is an error naming the key, its source and the closest valid key; a value of the
wrong type is an error naming the key and the expected type. YAML 1.1 quirks are absorbed where
the intent is unambiguous ("1e-4" is a string to YAML 1.1 but a number to the reader).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and the source."""


def is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp, key: str, label: str):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, label)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{label}: key '{key}' must be a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{key}[{i}]", label) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{label}: key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{label}: key '{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{label}: key '{key}' must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{label}: key '{key}' must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{label}: key '{key}' must be a string, got {value!r}")
    raise ConfigError(f"{label}: key '{key}' has unsupported type {tp}")  # pragma: no cover


def build_dataclass(cls, data: dict[str, Any], prefix: str, label: str):
    """``cls(**data)`` with nested sections built recursively; ``prefix`` is the dotted path of
    ``data`` (for messages), ``label`` names where the data came from."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(key, sorted(names), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(
                f"{label}: unknown config key '{full}'{hint}; valid keys here: {', '.join(sorted(names))}"
            )
        tp = hints[key]
        if is_dataclass_type(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"{label}: key '{full}' must be a mapping of {tp.__name__} fields, got {value!r}")
            kwargs[key] = build_dataclass(tp, value, f"{full}.", label)
        else:
            kwargs[key] = _coerce(value, tp, full, label)
    return cls(**kwargs)
