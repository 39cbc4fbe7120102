"""Data parallelism for the shared training loop: torchrun's processes, each with a slice of every batch.

A trainer launched as ``torchrun --nproc_per_node=N -m musicot.<stage>.train ...`` runs N copies of
itself. torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (nanoGPT reads them the same way);
`world()` reads them and `init()` joins the process group: NCCL on GPUs (one per process, by
LOCAL_RANK), gloo on CPU, which is how the tests run two processes on this machine.

Every batch a trainer draws is the *global* batch of the step (its config's batch size); each
process keeps its slice (`shard`), and the gradients of all processes are averaged (`average_grads`)
before the optimizer steps. So the number of processes changes the speed, not the run: N processes
train what one process with the whole batch trains, up to the order of floating-point sums. That is
DDP's arithmetic, done once per optimizer step on the parameters the optimizer owns, whatever
methods a trainer's loss calls (the VAE-GAN's discriminator, CLAP's two towers), where
`DistributedDataParallel` only sees calls of the wrapped module's `forward`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process' place among torchrun's: rank 0 of 1 for a plain `python` process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def master(self) -> bool:
        return self.rank == 0


def world() -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def log_level() -> int:
    """INFO for rank 0 (or a plain process), WARNING for the others: one process writes the job's log,
    while every rank's warnings and errors still reach it."""
    return logging.INFO if world().master else logging.WARNING


def init() -> World:
    """Join torchrun's process group (once); a plain process has none to join."""
    w = world()
    if w.size > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(w.local_rank)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return w


def device() -> torch.device:
    """The device this process trains on: its own GPU under torchrun (LOCAL_RANK), the GPU, or the CPU."""
    w = init()
    return torch.device("cuda", w.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def shard(batch: Any, w: World) -> Any:
    """This process' slice of a global batch: every tensor or array split along dim 0 into w.size equal
    parts. Dicts and tuples are walked as structures, a list of strings is a batch of items, anything
    else (a step number, a scalar) is kept whole. A batch that does not split evenly is an error, not
    a silent imbalance between processes."""
    if w.size == 1:
        return batch
    if isinstance(batch, torch.Tensor | np.ndarray) and batch.ndim > 0:
        n = batch.shape[0]
        if n % w.size:
            raise ValueError(
                f"a batch of {n} does not split over {w.size} processes: make the batch size a multiple of "
                f"the process count (batch_size is the global batch of a step, shared by all processes)"
            )
        part = n // w.size
        return batch[w.rank * part : (w.rank + 1) * part]
    if isinstance(batch, dict):
        return {k: shard(v, w) for k, v in batch.items()}
    if isinstance(batch, list) and batch and all(isinstance(x, str) for x in batch):
        return shard(np.array(batch, dtype=object), w).tolist()
    if isinstance(batch, tuple | list):
        return type(batch)(shard(x, w) for x in batch)
    return batch


def to_device(batch: Any, device: torch.device) -> Any:
    """`batch` with every tensor on `device` (dicts, tuples and lists walked as structures; arrays,
    strings and numbers kept as they are). A no-op on the CPU, where batches are made."""
    if device.type == "cpu":
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(x, device) for x in batch)
    return batch


def broadcast_module(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers everywhere: every process starts from the same weights."""
    if dist.is_initialized():
        for tensor in (*module.parameters(), *module.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_grads(params: Iterable[torch.nn.Parameter], size: int) -> None:
    """Average the gradients of `params` over all processes, in one flat all-reduce per dtype.

    A parameter without a gradient on this process gets zeros first, so every process reduces the
    same tensors (a branch one process skipped must not leave the others waiting)."""
    if size == 1:
        return
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    by_dtype: dict[torch.dtype, list[torch.nn.Parameter]] = {}
    for p in params:
        by_dtype.setdefault(p.grad.dtype, []).append(p)
    for group in by_dtype.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        dist.all_reduce(flat)
        flat /= size
        offset = 0
        for p in group:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n


def mean_over_processes(value: float | torch.Tensor, size: int) -> float:
    if size == 1:
        return float(value)
    t = torch.as_tensor(value, dtype=torch.float64).reshape(1).clone()
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item()) / size


def any_over_processes(flag: bool, size: int) -> bool:
    return mean_over_processes(float(flag), size) > 0 if size > 1 else flag


def gather_objects(obj: Any, size: int) -> list[Any]:
    """Every process' `obj`, in rank order (each process' RNG states for the checkpoint)."""
    if size == 1:
        return [obj]
    out: list[Any] = [None] * size
    dist.all_gather_object(out, obj)
    return out


def finish() -> None:
    """Leave the process group once every process is done (all of them call this)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def threads_per_process(threads: int) -> int:
    """A job's CPU threads shared by the torchrun processes on its node (LOCAL_WORLD_SIZE of them)."""
    return max(1, threads // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
