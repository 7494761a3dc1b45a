"""tools/carry_tree.sh: the working tree a lent GPU machine's call carries, slim for the stash calls, with the data for
the piece's call, then as committed, in a small repository of the same layout."""

import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "carry_tree.sh"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def tree(tmp_path) -> Path:
    repo = tmp_path / "repo"
    for path in ("docs/a.md", "results/r.json", "data/clip.pt", "skillmimic/assets/llc.pt", "skillmimic/assets/m.xml",
                 "skillmimic/sim.py", "train_llc.py"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(path)
    (repo / ".gitignore").write_text("__pycache__/\n")
    (repo / "tools").mkdir()
    shutil.copy(SCRIPT, repo / "tools")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "tree")
    return repo


def carry(repo: Path, state: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "tools/carry_tree.sh", state], cwd=repo, capture_output=True, text=True)


def carried(repo: Path) -> set[str]:
    """What a call carries: tracked files and untracked ones git does not ignore."""
    return set(git(repo, "ls-files", "--cached", "--others", "--exclude-standard").split())


def test_slim_then_data_then_full(tmp_path):
    repo = tree(tmp_path)
    everything = carried(repo)
    assert carry(repo, "slim").returncode == 0
    assert carried(repo) == {"skillmimic/assets/m.xml", "skillmimic/sim.py", "train_llc.py", "tools/carry_tree.sh",
                             ".gitignore"}
    assert (repo / "data" / "clip.pt").exists() and (repo / "results" / "r.json").exists()  # still on disk
    assert carry(repo, "data").returncode == 0
    assert "data/clip.pt" in carried(repo) and "results/r.json" not in carried(repo)
    assert carry(repo, "full").returncode == 0
    assert carried(repo) == everything and git(repo, "status", "--porcelain") == ""


def test_refusals_are_one_line_and_change_nothing(tmp_path):
    repo = tree(tmp_path)
    done = carry(repo, "data")
    assert done.returncode == 2 and done.stderr.strip() == "carry_tree.sh: run 'slim' first"
    (repo / "train_llc.py").write_text("changed")
    git(repo, "add", "train_llc.py")
    done = carry(repo, "slim")
    assert done.returncode == 2 and done.stderr.strip() == ("carry_tree.sh: the index has staged changes: commit or "
                                                            "unstage them")
    assert git(repo, "status", "--porcelain") == "M  train_llc.py\n"
    done = carry(repo, "wide")
    assert done.returncode == 2 and done.stderr.strip() == "carry_tree.sh: say slim, data or full"
