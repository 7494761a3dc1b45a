"""Where tensors live: a command line's --device ('auto', 'cuda', 'cuda:N', 'cpu') turned into a torch.device."""

from __future__ import annotations

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
