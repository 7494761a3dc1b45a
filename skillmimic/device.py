"""Where tensors live: a command line's --device ('auto', 'cuda', 'cuda:N', 'cpu') turned into a torch.device; and
how many CPU threads torch uses for work made of many small operations."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from skillmimic.errors import UserError


def resolve_device(device: str) -> torch.device:
    """'auto' -> the current GPU if torch sees one, else the CPU; 'cuda' -> 'cuda:N' with the current index."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        d = torch.device(device)
    except RuntimeError:
        raise UserError(f"--device {device}: not a device; use 'cuda', 'cuda:N', 'cpu' or 'auto'") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: torch sees no GPU here; use --device cpu (or auto)")
    if d.type == "cuda" and d.index is None:
        d = torch.device("cuda", torch.cuda.current_device())
    return d


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """torch's CPU threads set to n inside the block, restored after. For work made of thousands of operations on
    small tensors (deriving BallPlay-M's clips: a few thousand numbers each), which threads cannot speed up, and
    where several processes on one computer, each with a thread per core, stall one another. Measured on a
    2-core CPU, loading BallPlay-M (101 clips): 3.2 s alone; 70-78 s each for 4 processes at once with 2 threads;
    7 s each with 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
