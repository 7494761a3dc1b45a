"""tools/carry_pack.py: files split into carry folders within their sizes, joined back byte for byte."""

import subprocess
import sys

import pytest

from paths import ROOT
from scripts import run_python

sys.path.insert(0, str(ROOT / "tools"))
import carry_pack  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402


def test_pack_and_join_give_back_every_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "x").mkdir(parents=True)
    files = {"results/x/a_policy.pt": bytes(range(256)) * 40, "w-1.0-py3-none-any.whl": b"wheel" * 3000,
             "small.txt": b"s"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    sizes = carry_pack.pack(tmp_path / "out", [carry_pack.Path(n) for n in files], piece_mb=0.004, cap_mb=0.01,
                            last_mb=0.006)
    folders = sorted((tmp_path / "out").iterdir())
    assert len(folders) == len(sizes) >= 3 and sizes[-1] <= 6000 and all(s <= 10000 for s in sizes[:-1])
    stash = tmp_path / "stash"
    stash.mkdir()
    for f in folders:
        for piece in f.iterdir():
            (stash / piece.name).write_bytes(piece.read_bytes())
    written = carry_pack.join(stash, tmp_path / "whl", tmp_path / "work")
    assert (tmp_path / "work" / "results" / "x" / "a_policy.pt").read_bytes() == files["results/x/a_policy.pt"]
    assert (tmp_path / "whl" / "w-1.0-py3-none-any.whl").read_bytes() == files["w-1.0-py3-none-any.whl"]
    assert (tmp_path / "work" / "small.txt").read_bytes() == b"s" and len(written) == 3
    next(stash.glob("tree__results__x__a_policy.pt.part.01of03")).unlink()  # a folder not carried
    with pytest.raises(UserError, match=r"a_policy.pt: pieces \[0, 2\] of 3, some missing"):
        carry_pack.join(stash, tmp_path / "whl", tmp_path / "work")


def test_a_hidden_folders_file_and_a_missing_last_piece(tmp_path, monkeypatch):
    """A file under a folder whose name starts with a dot (Warp's kernel cache under .device-wheels/) packs into
    pieces that `cp FOLDER/*` copies (no name starts with a dot) and joins back at its path; a file whose last piece
    is missing is refused, not joined short (round 12's stash lost the cache's pieces to `cp FOLDER/*`)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "kernels.tgz").write_bytes(b"k" * 9000)
    carry_pack.pack(tmp_path / "out", [carry_pack.Path(".cache/kernels.tgz")], piece_mb=0.004, cap_mb=0.01,
                    last_mb=0.006)
    pieces = sorted(p for f in (tmp_path / "out").iterdir() for p in f.iterdir())
    assert sorted(p.name for p in pieces) == [f"tree__.cache__kernels.tgz.part.0{i}of03" for i in range(3)]
    stash = tmp_path / "stash"
    subprocess.run(f"mkdir -p {stash} && for f in {tmp_path / 'out'}/c*; do cp $f/* {stash}/; done", shell=True,
                   check=True)
    carry_pack.join(stash, tmp_path / "whl", tmp_path / "work")
    assert (tmp_path / "work" / ".cache" / "kernels.tgz").read_bytes() == b"k" * 9000
    (stash / "tree__.cache__kernels.tgz.part.02of03").unlink()
    with pytest.raises(UserError, match=r"kernels.tgz: pieces \[0, 1\] of 3, some missing"):
        carry_pack.join(stash, tmp_path / "whl", tmp_path / "work")


def test_mistakes_are_one_line():
    r = run_python(ROOT / "tools" / "carry_pack.py", "pack", "OUT", "no/such.pt", cwd=None, timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == "error: no/such.pt: no such file to pack"
    r = run_python(ROOT / "tools" / "carry_pack.py", "join", cwd=None, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: usage: carry_pack.py pack OUT FILE")


def test_join_needs_only_the_standard_library(tmp_path):
    """On the lent machine join runs before the wheels are installed: python -S (no site-packages: no torch, no
    tyro, no numpy) must do it."""
    stash = tmp_path / "stash"
    stash.mkdir()
    (stash / "t-1.0-py3-none-any.whl.part.00").write_bytes(b"wheel")
    (stash / "results__a.pt.part.00").write_bytes(b"ab")
    (stash / "results__a.pt.part.01").write_bytes(b"c")
    r = run_python("-S", ROOT / "tools" / "carry_pack.py", "join", stash, "--wheels", tmp_path / "whl", "--into",
                   tmp_path / "work", cwd=None, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "whl" / "t-1.0-py3-none-any.whl").read_bytes() == b"wheel"
    assert (tmp_path / "work" / "results" / "a.pt").read_bytes() == b"abc"
