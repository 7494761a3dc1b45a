"""Files for a lent GPU machine, whose calls carry at most 64 MiB of ignored folders with the working tree: split them
into pieces, deal the pieces into carry folders, and join them again on the machine.

    python tools/carry_pack.py pack .device-wheels/r8 .device-wheels/download/*.whl results/skills7/A_policy.pt
    python tools/carry_pack.py join /root/stash --wheels /root/whl --into /root/work

`pack OUT FILE ...` splits the files into pieces of --piece-mb (2) and writes OUT/c0, OUT/c1, ...: every folder but
the last holds at most --cap-mb (64.8) of pieces (each goes to the machine with one call that copies it to a stash
folder outside the working copy, which the next call refreshes), the last at most --last-mb (43.5; it goes with the
call that also carries the tree, which with the data is about 21 MB). A piece is named NAME.part.NNofMM: NAME is a
wheel's name or, for any other file, "tree__" and its path with "/" written "__" (so no piece's name starts with a
dot, which `cp FOLDER/*` passes over: round 12 lost its kernel cache's pieces so at first), NN its index, MM the
file's count of pieces, so that a file whose last pieces are missing is refused too (pieces named NAME.part.NN, as
packed before the count, still join). `join STASH` joins the pieces found in STASH: wheels (*.whl) into --wheels (for
`pip install --no-index --no-deps --target`), the other files under --into at their paths (the run's copy of the
tree). The procedure around it: docs/llc_recipe.md and the issue notes (stash calls, then one call that joins,
installs and starts the round from a copy of the tree).
"""

from __future__ import annotations

import collections
import dataclasses
import re
import shutil
import sys
from pathlib import Path

# The standard library only (skillmimic.errors and the package's __init__ import nothing else): `join` runs on the
# lent machine before the wheels it joins (tyro among them) are installed, so skillmimic.cli is out of reach.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from skillmimic.errors import UserError  # noqa: E402

MB = 1000 * 1000


TREE = "tree__"  # a packed file of the tree: its piece names start so


def piece_name(path: Path, index: int, count: int) -> str:
    """A piece's name: the file's name for a wheel, else "tree__" and its path with "/" written "__"; then
    .part.NNofMM (index NN of MM pieces)."""
    name = path.name if path.suffix == ".whl" else TREE + path.as_posix().replace("/", "__")
    return f"{name}.part.{index:02d}of{count:02d}"


PIECE = re.compile(r"(?P<name>.+)\.part\.(?P<index>\d+)(?:of(?P<count>\d+))?")


def pack(out: Path, files: list[Path], piece_mb: float = 2.0, cap_mb: float = 64.8, last_mb: float = 43.5
         ) -> list[int]:
    """Split `files` into pieces of piece_mb and deal them into out/c0 ... (at most cap_mb each; the last, the
    largest pieces first, at most last_mb). -> each folder's bytes."""
    for f in files:
        if not f.is_file():
            raise UserError(f"{f}: no such file to pack")
        if f.is_absolute() or ".." in f.parts:
            raise UserError(f"{f}: name it by a path inside the tree (it is put back at that path)")
    if piece_mb <= 0 or piece_mb > min(cap_mb, last_mb):
        raise UserError(f"--piece-mb {piece_mb}: must be above 0 and at most the folders' sizes")
    size = int(piece_mb * MB)
    pieces = []
    for f in files:
        data = f.read_bytes()
        starts = range(0, max(len(data), 1), size)
        pieces += [(piece_name(f, k, len(starts)), data[i : i + size]) for k, i in enumerate(starts)]
    last, rest, last_size = [], [], 0
    for name, data in sorted(pieces, key=lambda p: -len(p[1])):
        if last_size + len(data) <= last_mb * MB:
            last.append((name, data))
            last_size += len(data)
        else:
            rest.append((name, data))
    bins: list[list] = []
    for name, data in rest:
        for b in bins:
            if b[0] + len(data) <= cap_mb * MB:
                b[0] += len(data)
                b[1].append((name, data))
                break
        else:
            bins.append([len(data), [(name, data)]])
    if out.exists():
        shutil.rmtree(out)
    sizes = []
    for k, (total, items) in enumerate([*bins, [last_size, last]]):
        folder = out / f"c{k}"
        folder.mkdir(parents=True)
        for name, data in items:
            (folder / name).write_bytes(data)
        sizes.append(total)
    return sizes


def join(stash: Path, wheels: Path, into: Path) -> dict[Path, int]:
    """Join the pieces in `stash`: wheels into `wheels`, the other files under `into` at their paths. A file whose
    pieces are not all there is refused. -> {file written: bytes}"""
    parts: dict[str, list[tuple[int, Path]]] = collections.defaultdict(list)
    counts: dict[str, set[int | None]] = collections.defaultdict(set)
    for p in stash.iterdir():  # every name, those starting with a dot too
        m = PIECE.fullmatch(p.name)
        if m and p.is_file():
            parts[m["name"]].append((int(m["index"]), p))
            counts[m["name"]].add(None if m["count"] is None else int(m["count"]))
    if not parts:
        raise UserError(f"{stash}: no pieces (*.part.NN) to join")
    written = {}
    for name, found in sorted(parts.items()):
        found.sort()
        (count, *others) = counts[name]
        whole = list(range(len(found) if count is None else count))
        if others or [i for i, _ in found] != whole:
            raise UserError(f"{stash}: {name}: pieces {[i for i, _ in found]}"
                            f"{'' if count is None or others else f' of {count}'}, some missing: carry every folder")
        if name.endswith(".whl"):
            dest = wheels / name
        else:
            dest = into / name.removeprefix(TREE if count is not None else "").replace("__", "/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"".join(p.read_bytes() for _, p in found))
        written[dest] = dest.stat().st_size
    return written


@dataclasses.dataclass
class _Flags:
    piece_mb: float = 2.0
    cap_mb: float = 64.8
    last_mb: float = 43.5
    wheels: str = "/root/whl"
    into: str = "/root/work"


def main(argv: list[str]) -> None:
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return
    flags, words = _Flags(), []
    it = iter(argv)
    for w in it:
        if w.startswith("--"):
            key = w[2:].replace("-", "_")
            if key not in dataclasses.asdict(flags):
                raise UserError(f"{w}: unknown flag (known: --piece-mb, --cap-mb, --last-mb, --wheels, --into)")
            value = next(it, None)
            if value is None:
                raise UserError(f"{w}: needs a value")
            try:
                setattr(flags, key, type(getattr(flags, key))(value))
            except ValueError:
                raise UserError(f"{w} {value}: not a number") from None
        else:
            words.append(w)
    if len(words) >= 3 and words[0] == "pack":
        sizes = pack(Path(words[1]), [Path(w) for w in words[2:]], flags.piece_mb, flags.cap_mb, flags.last_mb)
        for k, s in enumerate(sizes):
            print(f"{words[1]}/c{k}: {s / MB:.1f} MB" + ("  (the last: with the tree)" if k == len(sizes) - 1 else ""))
    elif len(words) == 2 and words[0] == "join":
        for dest, size in join(Path(words[1]), Path(flags.wheels), Path(flags.into)).items():
            print(f"{dest} {size:,}")
    else:
        raise UserError("usage: carry_pack.py pack OUT FILE ... | carry_pack.py join STASH [--wheels D] [--into D]")


def run(argv: list[str]) -> None:
    """main, with a user's mistake or an unreadable file as one line on stderr (skillmimic.cli.run_guarded's
    behaviour, which needs tyro)."""
    try:
        main(argv)
    except UserError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        raise SystemExit(e.status) from None
    except OSError as e:
        if e.filename is None:
            raise
        print(f"error: {e.filename}: {e.strerror or e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run(sys.argv[1:])
