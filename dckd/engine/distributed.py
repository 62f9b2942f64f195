"""Process-group set-up for ``torchrun`` and the few collective helpers the loop needs.

One process per GPU (or several CPU processes with gloo). Only the student is wrapped in
DistributedDataParallel; frozen networks (teacher, history model, VQGAN) run locally on every rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as torch_distributed


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device is {name!r} but CUDA is not available on this machine")
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)


def initialise(device_name: str = "auto") -> Context:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); otherwise a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not torch_distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch_distributed.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return Context(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown() -> None:
    if torch_distributed.is_initialized():
        torch_distributed.destroy_process_group()


def barrier(context: Context) -> None:
    if context.is_distributed:
        torch_distributed.barrier()


def all_reduce_mean(values: dict[str, float], context: Context) -> dict[str, float]:
    """Average scalar logs over ranks (one collective for all of them)."""
    if not context.is_distributed or not values:
        return values
    names = sorted(values)
    tensor = torch.tensor([values[name] for name in names], dtype=torch.float64, device=context.device)
    torch_distributed.all_reduce(tensor)
    tensor /= context.world_size
    return dict(zip(names, tensor.tolist()))


def any_rank(flag: bool, context: Context) -> bool:
    """True on every rank if ``flag`` is true on any rank (keeps DDP ranks in step when one must skip)."""
    if not context.is_distributed:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=context.device)
    torch_distributed.all_reduce(tensor, op=torch_distributed.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def gather_objects(value: object, context: Context) -> list[object]:
    if not context.is_distributed:
        return [value]
    gathered: list[object] = [None] * context.world_size
    torch_distributed.all_gather_object(gathered, value)
    return gathered


def broadcast_object(value: object, context: Context) -> object:
    if not context.is_distributed:
        return value
    holder = [value]
    torch_distributed.broadcast_object_list(holder, src=0)
    return holder[0]
