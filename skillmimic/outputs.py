"""Output paths (--video, --save-images, --json-out, --run-dir), checked before the work that fills them: a typo
must cost a second, not a simulation or an evaluation. Each problem is one line (UserError) naming the flag.

What is checked is what can be known beforehand: the path is not a folder where a file goes (or a file where a
folder goes), no part of the way to it is a file, the nearest folder that exists can be written into (not on a
read-only disk, not another user's), and a file's name ends as its writer needs. A disk that fills up is still
found only when it does.
"""

from __future__ import annotations

import os
from pathlib import Path

from skillmimic.errors import UserError


def check_file(path: str | Path | None, flag: str, suffixes: tuple[str, ...] = ()) -> Path | None:
    """A file to be written at `path` (None: not asked for). suffixes: the endings its writer accepts ('.mp4').
    Its folder is made now, so that the writer finds it (and a folder that cannot be made is said now)."""
    if path is None:
        return None
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {path}: name a {' or a '.join(suffixes)} file")
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; name a file in it")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{flag} {path}: exists and cannot be overwritten (permission denied)")
    _check_way(path.parent, flag, path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{flag} {path}: its folder cannot be made ({e.strerror or e})") from None
    return path


def check_folder(path: str | Path | None, flag: str) -> Path | None:
    """A folder that files will be written into, made if missing (None: not asked for)."""
    if path is None:
        return None
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: is a file; pass a folder")
    _check_way(path, flag, path)
    return path


def _check_way(folder: Path, flag: str, path: Path) -> None:
    """The nearest existing one of `folder` and its parents must be a folder this process can write into."""
    for p in (folder, *folder.parents):
        if not p.exists():
            continue
        if not p.is_dir():
            raise UserError(f"{flag} {path}: is under {p}, which is a file")
        if not os.access(p, os.W_OK | os.X_OK):
            raise UserError(f"{flag} {path}: cannot write into {p} (permission denied or a read-only disk)")
        return
