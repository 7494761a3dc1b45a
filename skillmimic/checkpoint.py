"""Checkpoints: written atomically, read without running code, checked against what the reader expects.

A checkpoint is a dict of tensors and plain values (what `torch.load(weights_only=True)` accepts) with a
"format" string naming what it holds. Reading maps tensors to the caller's device (a file saved on a GPU loads on
a CPU machine), and a file of another kind or shape is one clear line naming the file and the difference.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from skillmimic import torchfile
from skillmimic.errors import UserError


class CheckpointError(UserError):
    """A checkpoint that cannot be used here; the message names the file and the problem."""


def to_cpu(obj: Any) -> Any:
    """A copy of a nest of dicts, lists and tensors with every tensor on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def non_finite(obj: Any, prefix: str = "") -> str | None:
    """The name of the first floating-point tensor in a nest of dicts and lists that holds NaN or Inf
    ('actor.0.weight', 'optimizer.state.3.exp_avg'), or None when every number is finite."""
    if isinstance(obj, torch.Tensor):
        return prefix.rstrip(".") if obj.is_floating_point() and not bool(torch.isfinite(obj).all()) else None
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for k, v in items:
        if (name := non_finite(v, f"{prefix}{k}.")) is not None:
            return name
    return None


def save_atomic(obj: dict, path: str | Path) -> None:
    """torch.save to a temporary file beside `path`, then rename over it: a crash never leaves half a file.
    Tensors are written from the CPU, so the file loads on any machine, even with a plain torch.load."""
    obj = to_cpu(obj)
    write_atomic(path, lambda f: torch.save(obj, f))


def write_atomic(path: str | Path, write, mode: str = "wb") -> None:
    """write(f) into a temporary file beside `path` opened with `mode`, then rename it over `path` (its folder made
    if missing): a crash never leaves half a file, and a failed write leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # the permissions of a file made by open(), not mkstemp's 0600
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# What each format holds, and where a user passes it: for the line that refuses a file of another kind.
KINDS = {
    "skillmimic-llc-train/1": ("a training checkpoint of train_llc.py", "pass it to train_llc.py --resume"),
    "skillmimic-llc-policy/1": ("a skill policy (a policy.pt of train_llc.py)",
                                "pass it to play.py --checkpoint, skillmimic.evaluate, train_hlc.py --llc or "
                                "train_llc.py --init-from"),
    "skillmimic-hlc-train/1": ("a training checkpoint of train_hlc.py", "pass it to train_hlc.py --resume"),
    "skillmimic-hlc-policy/1": ("a high-level policy (a policy.pt of train_hlc.py)",
                                "pass it to play.py --task TASK --checkpoint or skillmimic.evaluate_task"),
}


def kind_mismatch(path: Path, got: str, want: str, name: str | None = None) -> str:
    """The line for a file of format `got` where one of `want` was needed: what it is, where it goes, and the
    run's policy.pt beside a training checkpoint when a policy was wanted. The file is named as `name` (default:
    its path)."""
    noun = KINDS.get(got, (f"a {got!r} file", ""))[0]
    use = KINDS.get(got, ("", ""))[1]
    line = f"{name or path}: is {noun}, not {KINDS.get(want, (repr(want),))[0]}"
    sibling = path.parent / "policy.pt"
    if want.endswith("-policy/1") and got.endswith("-train/1") and sibling.is_file() and sibling != path:
        return f"{line}; its run's policy is {sibling}"
    return f"{line}; {use}" if use else line


def load(path: str | Path, fmt: str, expect: dict[str, Any] | None = None,
         map_location: str | torch.device = "cpu", name: str | None = None) -> dict:
    """Read a checkpoint of format `fmt`; each key of `expect` must hold the given value (sizes of the model).
    Errors name the file as `name` (default: its path; '--llc: runs/llc/policy.pt' names the flag too)."""
    path = Path(path)
    name = name or str(path)
    if not path.is_file():
        raise CheckpointError(f"{name}: no such checkpoint file")
    try:
        ckpt = torchfile.load(path, map_location=map_location)
    except torchfile.Unreadable as e:
        raise CheckpointError(f"{name}: {e}") from None
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise CheckpointError(f"{name}: not a skillmimic checkpoint (no 'format' entry)")
    if ckpt["format"] != fmt:
        raise CheckpointError(kind_mismatch(path, ckpt["format"], fmt, name))
    check_entries(ckpt, expect or {}, name)
    return ckpt


def check_entries(ckpt: dict, expect: dict[str, Any], name: str) -> None:
    """Each key of `expect` must hold the given value in the checkpoint `ckpt`, read from the file named `name`."""
    for key, want in expect.items():
        got = ckpt.get(key)
        if isinstance(want, tuple) and isinstance(got, list):
            got = tuple(got)
        if got != want:
            raise CheckpointError(f"{name}: made for {key}={got}, this model has {key}={want}")
