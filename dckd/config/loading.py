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
        if len(errors) == 1 and dataclasses.is_dataclass(next(a for a in arguments if a is not type(None))):
            raise ConfigError(errors[0])  # ``Section | None`` given a mapping: what is wrong inside it
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
        if not isinstance(key, str):
            where = path or "the top level"
            raise ConfigError(
                f"{where}: key {key!r} is a {type(key).__name__}, not an option name (YAML reads unquoted "
                f"on/off/yes/no/true/false as booleans and digits as numbers); {cls.__name__} accepts: "
                f"{', '.join(fields)}"
            )
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
    value = load_yaml_text(raw, f"override {text!r}") if raw.strip() else ""
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


MAX_CONFIG_BYTES = 64 * 1024
"""A config or options file is a few kilobytes (the largest shipped one: 5 KB); a larger file is refused before
it is parsed, which bounds the parse at well under a second."""
MAX_YAML_DEPTH = 32
"""Nesting levels a config may have (dckd's deepest section nests 5)."""
MAX_YAML_NODES = 20000
"""Values a config may hold once every alias is expanded (a shipped config holds a few hundred)."""
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with bounded work: nesting depth, the size with aliases expanded (an alias bomb is
    a few lines that expand to billions of values), and duplicate keys (YAML keeps the last one silently)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(f"line {mark.line + 1}: nested more than {MAX_YAML_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key ([a, b]: ...): the constructor reports it
                    continue
                if first is not key_node:
                    raise ConfigError(
                        f"line {key_node.start_mark.line + 1}: key {key!r} appears twice (first on line "
                        f"{first.start_mark.line + 1}); YAML would silently keep the last one"
                    )
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node) -> int:
    """How many values ``root`` holds with every alias expanded (memoised over the shared nodes, so the
    work is proportional to the file, not to the expansion). A node that contains itself is an error."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        children = [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else node.value
        if children_done:
            in_progress.discard(key)
            sizes[key] = min(1 + sum(sizes[id(child)] for child in children), MAX_YAML_NODES + 1)
            continue
        if key in in_progress:
            raise ConfigError(f"line {node.start_mark.line + 1}: a value contains itself (a recursive alias)")
        in_progress.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in in_progress:
                raise ConfigError(f"line {child.start_mark.line + 1}: a value contains itself (a recursive alias)")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _yaml_problem(error: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: where, and what."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def load_yaml_text(text: str, where: str) -> Any:
    """Parse YAML ``text`` with bounded work (depth, expanded size, no duplicate keys); errors are one line
    that starts with ``where`` (the file, or the ``--set`` override)."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_YAML_NODES:
            raise ConfigError(
                f"more than {MAX_YAML_NODES} values once its aliases (*name) are expanded; a config is a few "
                "hundred (an alias bomb?)"
            )
        return loader.construct_document(node)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{where} is not valid YAML: {_yaml_problem(error)}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> dict:
    """The top-level mapping of a YAML config file; the file is checked before it is parsed (a regular file,
    at most ``MAX_CONFIG_BYTES``, UTF-8 text) and parsed with bounded work. Errors name the file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; give the YAML file (e.g. configs/smoke/scratch.yaml)")
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a regular file")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"config file {path} is {size} bytes; a config is a few kilobytes (at most {MAX_CONFIG_BYTES}): "
                "is this the right file?"
            )
        content = path.read_bytes()[: MAX_CONFIG_BYTES + 1]
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror or error}") from None
    if b"\x00" in content:
        raise ConfigError(f"config file {path} is a binary file (an image? a checkpoint?), not a YAML config")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {error.start}): not a YAML config, or saved in another "
            "encoding"
        ) from None
    data = load_yaml_text(text, f"config file {path}")
    if data is None:
        raise ConfigError(f"config file {path} is empty; a config sets at least the data (see configs/)")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def dump_yaml(data: Any) -> str:
    """YAML text of a plain structure or a dataclass tree."""
    return yaml.safe_dump(to_dict(data), sort_keys=False, default_flow_style=None, width=110)
