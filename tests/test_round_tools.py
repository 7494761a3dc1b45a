"""tools/round_wait.sh: a call that finds a fresh machine ends at once; one on the round's machine waits for it."""

import subprocess
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "round_wait.sh"


def wait(round_dir: Path, seconds: int) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    done = subprocess.run(["bash", str(SCRIPT), str(round_dir), str(seconds)], capture_output=True, text=True,
                          timeout=60)
    return done, time.monotonic() - start


def test_fresh_machine_ends_at_once_with_one_line(tmp_path):
    done, took = wait(tmp_path / "run", 30)
    assert done.returncode == 3
    assert took < 5
    assert done.stderr.strip().splitlines() == [f"round_wait.sh: {tmp_path / 'run'} is not on this machine: a fresh "
                                                "machine, the round is lost with the last one"]


def test_finished_round_returns_at_once(tmp_path):
    (tmp_path / "status").write_text("06:19:12 B3 trained\n06:19:25 DONE\n")
    done, took = wait(tmp_path, 30)
    assert done.returncode == 0 and took < 5
    assert done.stdout.strip().endswith("DONE")


def test_running_round_waits_its_seconds(tmp_path):
    (tmp_path / "status").write_text("05:48:00 arms Y B3 for 1500s each on 1 GPUs\n")
    done, took = wait(tmp_path, 2)
    assert done.returncode == 0
    assert 2 <= took < 10
    assert "arms Y B3" in done.stdout
