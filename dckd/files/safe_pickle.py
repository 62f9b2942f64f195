"""Read ``torch.save`` files without executing pickled code.

A pickle can name any importable callable and call it while loading (``os.system("...")``). PyTorch's
``weights_only=True`` loader refuses every global outside a small allow-list, which is right for plain
state_dicts but also refuses official Lightning checkpoints (taming's VQGAN ``last.ckpt`` pickles
callback classes, hyper-parameter containers, numpy scalars).

``safe_torch_load`` first tries ``weights_only=True``. If that refuses a global, it loads again with a
restricted unpickler in which:

- tensors, storages, ``OrderedDict``, ``torch.Size``/dtypes and plain containers are built as usual;
- a global from a module that can run commands or code (``os``, ``subprocess``, ``builtins``' ``eval``,
  ``exec``, ``__import__``, ``importlib``, ``runpy``, ``socket``, ``shutil``, ...) is refused with a
  ``CheckpointError`` naming it: such a file is hostile, there is no legitimate reason for it;
- any other global becomes an inert ``Placeholder`` that records its name and arguments and is never
  imported or called, so the rest of the file (e.g. its ``state_dict``) is still usable.
"""

from __future__ import annotations

import builtins
import codecs
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from dckd.errors import CheckpointError, UnsafePickleError

# Modules whose callables can execute commands or code, or touch files and sockets.
# Nothing is ever called while loading (unknown globals become placeholders), so this list is policy:
# a checkpoint that names one of these has no legitimate reason to, and is refused with a clear error.
_FORBIDDEN_MODULES = (
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "shutil",
    "socket",
    "importlib",
    "runpy",
    "pty",
    "code",
    "codeop",
    "ctypes",
    "multiprocessing",
    "signal",
    "webbrowser",
    "pickle",
    "_pickle",
    "marshal",
    "commands",
    "popen2",
    "pdb",
    "timeit",
    "torch.hub",
    "torch.serialization",
)
# builtins that are harmless to construct.
_SAFE_BUILTINS = {
    "set",
    "frozenset",
    "slice",
    "complex",
    "bytearray",
    "bytes",
    "range",
    "list",
    "dict",
    "tuple",
    "int",
    "float",
    "bool",
    "str",
    "object",
}


class Placeholder:
    """Stands in for an object whose class or factory was not imported; holds what the pickle gave it."""

    def __init__(self, qualified_name: str, args: tuple = (), kwargs: dict | None = None) -> None:
        self.qualified_name = qualified_name
        self.args = args
        self.kwargs = kwargs or {}
        self.state: Any = None
        self.items: dict = {}
        self.list_items: list = []

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.list_items.append(value)

    def extend(self, values: Any) -> None:
        self.list_items.extend(values)

    def __repr__(self) -> str:
        return f"Placeholder({self.qualified_name})"


def _placeholder_class(qualified_name: str) -> type:
    """A fresh class standing for ``qualified_name`` (NEWOBJ needs a class, REDUCE any callable)."""

    def new(cls, *args: Any, **kwargs: Any) -> Placeholder:
        return Placeholder(qualified_name, args, kwargs)

    return type(
        "Placeholder_" + qualified_name.replace(".", "_"),
        (),
        {"__new__": new, "qualified_name": qualified_name, "__repr__": lambda self: qualified_name},
    )


def _is_forbidden(module: str, name: str) -> bool:
    if module in ("builtins", "__builtin__"):
        return name not in _SAFE_BUILTINS
    return any(module == forbidden or module.startswith(forbidden + ".") for forbidden in _FORBIDDEN_MODULES)


def _allowed_torch_global(module: str, name: str) -> Any | None:
    """The globals a tensor checkpoint legitimately needs (the same family torch's weights_only allows)."""
    if module == "collections" and name == "OrderedDict":
        return OrderedDict
    if module == "torch._utils" and name in (
        "_rebuild_tensor_v2",
        "_rebuild_parameter",
        "_rebuild_tensor",
        "_rebuild_parameter_with_state",
        "_rebuild_device_tensor_from_numpy",
        "_rebuild_qtensor",
        "_rebuild_sparse_tensor",
        "_rebuild_wrapper_subclass",
    ):
        return getattr(torch._utils, name)
    if module == "torch" and (
        name == "Size"
        or name == "device"
        or name.endswith("Storage")
        or isinstance(getattr(torch, name, None), torch.dtype)
    ):
        return getattr(torch, name)
    if module == "torch._tensor" and name == "_rebuild_from_type_v2":
        return torch._tensor._rebuild_from_type_v2
    if module == "torch.nn.parameter" and name == "Parameter":
        return torch.nn.Parameter
    if module == "torch.storage" and name == "_load_from_bytes":
        return None  # legacy path: would call torch.load recursively; not needed for our formats
    if module == "builtins" and name in _SAFE_BUILTINS:
        return getattr(builtins, name)
    if module == "_codecs" and name == "encode":
        return codecs.encode  # byte strings in protocol-2 pickles
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        allowed = _allowed_torch_global(module, name)
        if allowed is not None:
            return allowed
        if _is_forbidden(module, name):
            raise UnsafePickleError(f"refused: the file imports {module}.{name}, which can run code")
        return _placeholder_class(f"{module}.{name}")


class _RestrictedPickleModule:
    """A ``pickle_module`` for ``torch.load`` whose Unpickler is the restricted one."""

    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError
    __name__ = "dckd_restricted_pickle"

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()


def safe_torch_load(path: str | Path) -> Any:
    """Load a ``torch.save`` file to CPU without executing pickled code (see module docstring)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first_error = error
    except MemoryError:
        raise
    except Exception as error:  # torch.load raises assorted types on damaged files (RuntimeError, KeyError, ...)
        raise CheckpointError(
            f"checkpoint {path} is truncated or not a PyTorch file ({type(error).__name__}: {error})"
        ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule)
    except UnsafePickleError as error:
        raise CheckpointError(f"checkpoint {path} {error}; it was not loaded") from None
    except Exception as error:  # anything else the restricted reader cannot build
        raise CheckpointError(
            f"checkpoint {path} could not be read safely ({type(error).__name__}: {error}); "
            f"the weights-only loader said: {first_error}"
        ) from None
