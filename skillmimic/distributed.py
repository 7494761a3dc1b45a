"""Training on several processes (one per GPU, launched by torchrun) or on one: ranks, shared gradients and stats.

    torchrun --standalone --nproc_per_node=2 train_llc.py --num-envs 8192 ...

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them a run is a single process and every collective here
returns at once, so a single-process run computes exactly what it did before this module existed. Each rank
simulates its own share of the environments on its own GPU (NCCL) or on the CPU (gloo); gradients are averaged
with one all-reduce per optimiser step; normaliser statistics are summed over ranks (`share_normalizers_`); the
main rank (0) alone logs and writes files (a checkpoint holds every rank's environment and random state:
skillmimic.runs).

Stopping: SIGINT or SIGTERM (Ctrl-C, `timeout -s INT`, torchrun passing a signal on) asks for a stop; the ranks
agree on it at the end of an iteration (skillmimic.runs.Run.reduce) and save together. A second signal to a single
process stops it at once.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from typing import Any, Callable

import torch
import torch.distributed as dist

from skillmimic.device import resolve_device
from skillmimic.errors import UserError
from skillmimic.normalizer import EmpiricalNormalization

# Keep NVLink multicast (NVLS / symmetric memory) off: the multi-GPU machines it was tested on do not support it.
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


@dataclasses.dataclass(frozen=True)
class Ranks:
    """Where this process stands: its rank among world_size processes and its GPU index on the host."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def multi(self) -> bool:
        return self.world_size > 1


def init(device: str) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun describes (if any) and pick this rank's device.

    device: 'auto', 'cuda' or 'cpu' (as --device); under torchrun a GPU rank uses cuda:LOCAL_RANK.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks(), resolve_device(device)
    for k, v in NO_MULTICAST.items():  # before NCCL starts; a value the user set wins
        os.environ.setdefault(k, v)
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    d = resolve_device(device)
    if d.type == "cuda":
        if ranks.local_rank >= torch.cuda.device_count():
            raise UserError(f"rank {ranks.rank}: LOCAL_RANK {ranks.local_rank} but this host has "
                             f"{torch.cuda.device_count()} GPUs: use --nproc_per_node <= {torch.cuda.device_count()}")
        d = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(d)
        dist.init_process_group("nccl", device_id=d)
    else:
        dist.init_process_group("gloo")
    return ranks, d


def close(ranks: Ranks, clean: bool) -> None:
    """Leave the process group: after a clean stop once every rank is done (the main rank may still be writing
    a checkpoint); after a failure at once (the other ranks may be waiting in another collective)."""
    if ranks.multi and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum_(t: torch.Tensor) -> torch.Tensor:
    """Sum `t` over the ranks, in place (nothing on one process). Returns t."""
    if active():
        dist.all_reduce(t)
    return t


def share_normalizers_(module: torch.nn.Module) -> None:
    """Make every normaliser in `module` merge the batches of all ranks (nothing on one process, whose updates
    stay those of a single process)."""
    if active():
        for m in module.modules():
            if isinstance(m, EmpiricalNormalization):
                m.reduce = all_reduce_sum_


def sum_named(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Named scalar tensors (all on one device) summed over the ranks, as floats: stacked once, one all-reduce,
    one device sync (`tolist`). {name: () tensor} -> {name: float}."""
    summed = all_reduce_sum_(torch.stack(list(values.values()))).tolist()
    return dict(zip(values, summed))


def broadcast_module_(module: torch.nn.Module) -> None:
    """Give every rank the main rank's parameters and buffers."""
    if active():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients_(params: list[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over the ranks: one all-reduce of all gradients, flattened."""
    if not active():
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's `obj` (plain values and CPU tensors), as a list on the main rank; None on the others."""
    if not active():
        return [obj]
    out = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def split_envs(num_envs: int, ranks: Ranks, resume: dict | None, resume_path: str | None) -> tuple[int, int]:
    """(environments in all, environments of this rank); a resumed run must keep its count and its ranks."""
    if num_envs % ranks.world_size:
        raise UserError(f"--num-envs {num_envs} does not split evenly over {ranks.world_size} processes")
    if resume is not None:
        made = (resume["num_envs"], resume.get("world_size", 1))
        if made != (num_envs, ranks.world_size):
            raise UserError(f"{resume_path}: made with {made[0]} environments on {made[1]} process(es); this run "
                             f"has {num_envs} on {ranks.world_size}: pass --num-envs {made[0]} and start "
                             f"{made[1]} process(es) (torchrun --nproc_per_node) to continue it")
    return num_envs, num_envs // ranks.world_size


class StopRequest:
    """From construction until `restore()`, SIGINT and SIGTERM ask for a stop at the end of the iteration.

    The training loop adds `requested` to the statistics it sums over the ranks once per iteration and stops on
    every rank when the sum is positive, so all ranks save the same iteration together.
    """

    def __init__(self, ranks: Ranks, on_request: Callable[[], None] | None = None):
        self.ranks = ranks
        self.polls = 0  # reads of `requested`: the loop reads it once an iteration, at the iteration's end
        self._requested = False
        self._on_request = on_request  # called at the first request: to say at once that it was heard
        self._old = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for. Read once an iteration, at its end; a request made after that read is
        seen at the end of the next iteration (so a handler can tell which: `polls`)."""
        self.polls += 1
        return self._requested

    def _handler(self, signum, frame) -> None:
        if self._requested and not self.ranks.multi:
            raise KeyboardInterrupt  # a second Ctrl-C on one process: stop now
        if not self._requested and self._on_request is not None:
            self._on_request()
        self._requested = True

    def restore(self) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def say(text: str) -> None:
    """Write text to stderr from a signal handler: os.write, since the handler may interrupt a print to the same
    stream (a buffered stream refuses a reentrant write)."""
    try:
        os.write(sys.stderr.fileno(), text.encode())
    except (OSError, ValueError, AttributeError):  # no file descriptor behind stderr: say nothing
        pass
