"""Freed host memory stays in the process (Linux with glibc): a speed setting for training on a CPU.

glibc hands blocks above its mmap threshold (128 KiB at first, growing dynamically) straight back to the
operating system when they are freed, and trims the top of the heap above its trim threshold. A training
iteration frees and allocates the same large activations every time, so on a CPU each one is page-faulted
and zeroed again by the kernel at every iteration. Raising both thresholds keeps them in the process:
measured on the demo's setting (benchmarks/demo_step.py, 2 cores, 2026-11-30), the same DCKD iteration went from
294 to 226 ms and a Scratch one from 71 to 61 ms, with identical results (only where memory comes from changes).
The price: memory freed by the process is not returned to the system until it exits.
"""

from __future__ import annotations

import ctypes
import platform

from dckd.errors import ConfigError

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter numbers (malloc.h)."""
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""glibc's largest accepted mmap threshold on 64-bit systems: blocks up to this size come from the heap."""
TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024
"""Free memory at the top of the heap is kept up to this size."""


def keep_freed_host_memory() -> None:
    """Raise glibc's mmap and trim thresholds for the rest of this process (``train.keep_freed_host_memory``).

    Raises ``ConfigError`` where the C library is not glibc or refuses a value: the option is never ignored."""
    library, _ = platform.libc_ver()
    if library != "glibc":
        raise ConfigError(
            "train.keep_freed_host_memory: true needs Linux with glibc (it sets glibc's malloc thresholds); this "
            f"system's C library is {library or 'unknown'}; set it to false"
        )
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    for name, parameter, value in (
        ("M_MMAP_THRESHOLD", M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        ("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
    ):
        if mallopt(parameter, value) != 1:
            raise ConfigError(f"train.keep_freed_host_memory: glibc's mallopt refused {name} = {value}")


def available() -> bool:
    """Whether ``keep_freed_host_memory`` can work here (Linux with glibc)."""
    return platform.libc_ver()[0] == "glibc"
