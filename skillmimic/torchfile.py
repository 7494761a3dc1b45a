"""Reading a file that torch.save wrote, without ever running code from it (weights_only=True), and saying in one
sentence a user can act on why a file cannot be read: empty, not a torch file at all, cut short, or holding Python
objects other than tensors. torch's own messages run to several lines and say what torch changed in 2.6; the
sentence here names what is wrong with the file. Checkpoints (skillmimic.checkpoint) and clips (skillmimic.motion)
read their files through `load`. A file may also be stored gzip-compressed under its own name (`gzip -9 -n -c
policy.pt > FILE`): the repository keeps its files under 16 MiB, and a 19-skill policy file with skill heads is 16.8
MB (15.6 compressed); `load` recognises the compression by its first bytes.
"""

from __future__ import annotations

import codecs
import gzip
import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch


class Unreadable(Exception):
    """Why a file cannot be read, as a clause that follows the file's name ('an empty file (0 bytes) ...')."""


def load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load(path, weights_only=True), or Unreadable saying why not; a gzip-compressed file is read through
    its decompression. The path must name an existing file (the callers say 'no such file' in their own words)."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise Unreadable("an empty file (0 bytes), not one that torch.save wrote: a copy or a write that did not "
                         "finish?")
    with path.open("rb") as f:
        head = f.read(512)
    source: Path | io.BytesIO = path
    if head[:2] == b"\x1f\x8b":  # gzip's magic number
        try:
            data = gzip.decompress(path.read_bytes())
        except (OSError, EOFError):
            raise Unreadable(f"a gzip-compressed file that does not decompress ({size:,} bytes): cut short or "
                             f"damaged?") from None
        source, head, size = io.BytesIO(data), data[:512], len(data)
    if head[:2] == b"PK":  # torch.save writes a zip archive
        if not zipfile.is_zipfile(source):
            raise Unreadable(f"cut short or damaged ({size:,} bytes, and the end of its zip archive is missing): a "
                             f"copy or a write that did not finish?")
    elif head[:1] != b"\x80":  # nor a pickle, which torch.save wrote before version 1.6
        raise Unreadable(f"not a file that torch.save wrote ({size:,} bytes{_looks_like(head)})")
    if isinstance(source, io.BytesIO):
        source.seek(0)  # is_zipfile read its end
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:  # the weights-only unpickler met a class or a function: code, not run
        raise Unreadable(f"refused: it holds Python objects other than tensors and plain values, which loading "
                         f"never runs ({_weights_only_reason(str(e))})") from None
    except Exception as e:  # noqa: BLE001 - whatever torch raises on a damaged file is a damaged file
        raise Unreadable(f"cannot be read: {first_sentence(str(e)) or type(e).__name__}") from None


def first_sentence(text: str) -> str:
    """The first sentence of a message (of its first non-empty line), whole: never cut in the middle."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)  # terminal colours
    match = re.search(r"[.!?](\s|$)", line)
    return line[: match.start() + 1] if match else line


def _weights_only_reason(message: str) -> str:
    """What torch's weights-only unpickler objected to ('Unsupported global: GLOBAL os.system'), without the
    paragraph about torch 2.6 around it (whose wording differs between torch versions)."""
    _, found, rest = message.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (rest if found else message).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    reason = first_sentence(named[0] if named else rest if found else message)
    return reason.split(" was not an allowed global")[0].rstrip(".")


def _looks_like(head: bytes) -> str:
    """', text' when a file's first bytes (up to 512) read as text (a YAML file or a log passed by mistake),
    else ''."""
    try:  # incremental: a character cut at byte 512 is not an error
        codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        return ""
    return "" if b"\0" in head else ", text"
