"""Turn YAML (and ``--set a.b=value`` overrides) into validated, typed dataclass configs, and back.

The dataclasses in ``dckd.config.schema`` are the only options schema. This module knows nothing about them:
it walks any dataclass tree and checks every value against the field's type annotation. Unknown keys,
wrong types and values refused by a ``__post_init__`` are errors that name the option by its dotted
path (``dckd.contrastive_weight``) and say what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from dckd.errors import ConfigError

T = TypeVar("T")


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(value) for value in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        inner = _type_name(args[0]) if args else "any"
        return f"a list of {inner}"
    if origin is dict:
        return "a mapping"
    if annotation is type(None):
        return "null"
    if dataclasses.is_dataclass(annotation):
        return f"a mapping of {annotation.__name__} options"
    return getattr(annotation, "__name__", str(annotation))


def _convert(value: Any, annotation: Any, path: str) -> Any:
    """Check ``value`` against ``annotation`` and return it converted (lists -> tuples, dicts -> dataclasses)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        arguments = typing.get_args(annotation)
        if value is None and type(None) in arguments:
            return None
        errors = []
        for argument in arguments:
            if argument is type(None):
                continue
            try:
                return _convert(value, argument, path)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{path}: expected {_type_name(annotation)}, got {value!r}")
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not allowed; accepted values: {', '.join(map(repr, allowed))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected {_type_name(annotation)}, got {value!r}")
        arguments = typing.get_args(annotation)
        if origin is tuple and len(arguments) > 0 and arguments[-1] is not Ellipsis:
            if len(value) != len(arguments):
                raise ConfigError(f"{path}: expected {len(arguments)} values, got {len(value)}: {value!r}")
            return tuple(
                _convert(item, argument, f"{path}[{i}]") for i, (item, argument) in enumerate(zip(value, arguments))
            )
        item_type = arguments[0] if arguments else Any
        return tuple(_convert(item, item_type, f"{path}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        key_type, value_type = typing.get_args(annotation) or (Any, Any)
        return {
            _convert(key, key_type, f"{path} key"): _convert(item, value_type, f"{path}.{key}")
            for key, item in value.items()
        }
    if dataclasses.is_dataclass(annotation):
        if dataclasses.is_dataclass(value) and type(value) is annotation:
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected {_type_name(annotation)}, got {value!r}")
        return from_dict(annotation, value, path)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML reads 1e-4 (no dot) as a string; accept numeric strings for floats only.
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported option type {annotation!r}")


def from_dict(cls: type[T], data: dict, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ``ConfigError``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    unknown = [key for key in data if key not in fields]
    if unknown:
        key = unknown[0]
        suggestion = difflib.get_close_matches(str(key), fields, n=1)
        hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else ""
        where = f"{path}.{key}" if path else str(key)
        raise ConfigError(f"{where}: unknown option{hint}; {cls.__name__} accepts: {', '.join(fields)}")
    values = {}
    for name, field in fields.items():
        where = f"{path}.{name}" if path else name
        if name in data:
            values[name] = _convert(data[name], hints[name], where)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: required option is missing ({_type_name(hints[name])})")
        elif field.default_factory is not dataclasses.MISSING:
            # Defaults go through the same conversion (lists become tuples), so a config equals its reloaded YAML.
            values[name] = _convert(to_dict(field.default_factory()), hints[name], where)
    try:
        return cls(**values)
    except ConfigError as error:
        # __post_init__ checks name the field; prefix the section path so nested errors are findable.
        raise ConfigError(f"{path}.{error}" if path else str(error)) from None


def to_dict(config: Any) -> Any:
    """Plain YAML-friendly structure (tuples become lists) of a dataclass tree; a dataclass with its own
    ``to_dict()`` (``Config``: the method's options under the method's name) gives that."""
    if dataclasses.is_dataclass(config) and hasattr(config, "to_dict"):
        return config.to_dict()
    if dataclasses.is_dataclass(config):
        return {field.name: to_dict(getattr(config, field.name)) for field in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(item) for item in config]
    if isinstance(config, dict):
        return {key: to_dict(value) for key, value in config.items()}
    return config


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into (["a", "b", "c"], value); the value is read as YAML (``0.1``, ``[1, 2]``, ``null``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. dckd.contrastive_weight=0.1")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: the key {key!r} is not a dotted option path")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({error})") from None
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply dotted overrides to a raw mapping (before validation, so they go through the same checks)."""
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"override {text!r}: {where} is {child!r}, not a section")
            node = child
        node[parts[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def dump_yaml(data: Any) -> str:
    """YAML text of a plain structure or a dataclass tree."""
    return yaml.safe_dump(to_dict(data), sort_keys=False, default_flow_style=None, width=110)
