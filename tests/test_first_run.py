"""A new user's first training run on a CPU, through the real command line: what it says before it starts (the
device, the simulator, the sizes that follow the device even under a config written for a GPU, the run folder, and
what a CPU run is for), the time taken and left on every progress line, Ctrl-C answered at once with the iteration
the run will stop after (and that one saved), a killed run's tensorboard log gone from a fresh start in its
folder, and Ctrl-C in the warm start: one line, nothing written."""

import re
import signal
import subprocess
import sys

import torch

from paths import ROOT
from scripts import importable_env
from skillmimic import checkpoint

SMALL = ["--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2", "--hidden", "64", "64",
         "--device", "cpu", "--motion-dir", "data/BallPlay-M/layup"]


def _start(*args) -> subprocess.Popen:
    """train_llc.py as a user starts it, its output read as it comes. SIGINT is made the default in the child (a
    test runner may start processes with it ignored), so that Ctrl-C reaches Python as it does in a terminal."""
    return subprocess.Popen([sys.executable, str(ROOT / "train_llc.py"), *map(str, args)], cwd=ROOT,
                            env=importable_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _until(proc: subprocess.Popen, pattern: str) -> list[str]:
    """The output lines up to and including the first that matches `pattern` (all of them if none does)."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if re.search(pattern, line):
            break
    return lines


def test_a_first_cpu_run_says_what_it_does_and_how_long_and_stops_at_once_on_ctrl_c(tmp_path):
    run = tmp_path / "run"
    # What a run killed before its first checkpoint leaves: no checkpoint (so the folder holds no run), a log.
    (run / "tb").mkdir(parents=True)
    (run / "tb" / "events.out.tfevents.1.killed").write_bytes(b"a killed run's log")
    (run / "progress.csv").write_text("iteration,samples\n1,256\n")
    # mixed.yaml asks for 8,192 environments on a GPU; on a CPU the run takes 8, and 100 iterations.
    proc = _start("--config", "configs/llc/mixed.yaml", *SMALL, "--warm-start-steps", "0", "--checkpoint-every", "1",
                  "--run-dir", run)
    try:
        lines = _until(proc, r"\] 1/100 ")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    text = "".join(lines)
    assert proc.returncode == 0, err
    assert (f"train_llc.py: cpu, plain MuJoCo, rigid hand; 8 environments x 8 steps = 64 samples an iteration; 100 "
            f"iterations; run folder {run}\n") in text, text
    assert "note: a CPU run is for trying the pipeline: 100 iterations are 6,400 samples" in text
    assert re.search(r"\] 1/100 .* \d+:\d\d elapsed, \d+:\d\d left\n", lines[-1]), lines[-1]
    # Ctrl-C is answered at once with the iteration the run stops after, and that iteration is the one saved.
    said = re.search(r"stop requested: the run stops after iteration (\d+) and saves it", err)
    saved = re.search(r"stop requested: saving iteration (\d+)", err)
    assert said and saved and said.group(1) == saved.group(1), err
    ckpt = checkpoint.load(run / "checkpoint.pt", "skillmimic-llc-train/1")
    assert ckpt["iteration"] == int(saved.group(1)) and ckpt["args"]["iterations"] == 100
    assert not (run / "tb" / "events.out.tfevents.1.killed").exists() and list((run / "tb").iterdir())
    assert (run / "progress.csv").read_text().splitlines()[1].startswith("1,64,")
    assert torch.isfinite(ckpt["agent"]["actor.0.weight"]).all()


def test_ctrl_c_in_the_warm_start_is_one_line_and_writes_nothing(tmp_path):
    proc = _start(*SMALL, "--num-envs", "4", "--warm-start-steps", "1000000", "--run-dir", tmp_path / "run")
    try:
        lines = _until(proc, r"warm start: step 100/")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert "warm start: step 100/1000000" in lines[-1], lines
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines() == ["interrupted (Ctrl-C): stopped before finishing; nothing more was written"]
    assert not (tmp_path / "run").exists()
