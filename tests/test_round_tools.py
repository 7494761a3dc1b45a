"""tools/round_wait.sh and tools/round_piece.sh, the lent GPU machine's procedure: a call that finds a fresh machine
ends at once; one on the round's machine waits for it; a piece joins, trains, evaluates and brings its files back."""

import os
import re
import shutil
import subprocess
import sys
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


PIECE = Path(__file__).resolve().parents[1] / "tools" / "round_piece.sh"


def _piece(tmp_path, pieces: int, *args: str, **env: str) -> subprocess.CompletedProcess:
    """tools/round_piece.sh from the repository's root with its folders under tmp_path."""
    paths = {k: str(tmp_path / k.lower()) for k in ("STASH", "WORK", "WHL", "SITE", "OUT", "KEEP")}
    return subprocess.run(["bash", str(PIECE), *args], cwd=PIECE.parents[1], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **paths, "PIECES": str(pieces),
                                            "WARP_CACHE_PATH": str(tmp_path / "wc"), **env})


def _pack(tmp_path) -> tuple[Path, int]:
    """A small file packed into carry folders, every folder but the last stashed as the stash calls would: (the last
    folder, the pieces of all)."""
    root = PIECE.parents[1]
    policy = root / "results" / "skills10" / "B3_policy.pt"
    subprocess.run([sys.executable, str(root / "tools" / "carry_pack.py"), "pack", str(tmp_path / "pack"),
                    str(policy.relative_to(root)), "--cap-mb", "8", "--last-mb", "8"], cwd=root, check=True,
                   capture_output=True)
    folders = sorted((tmp_path / "pack").iterdir(), key=lambda p: int(p.name[1:]))
    (tmp_path / "stash").mkdir()
    for folder in folders[:-1]:
        for piece in folder.iterdir():
            shutil.copy(piece, tmp_path / "stash")
    return folders[-1], sum(1 for f in folders for _ in f.iterdir())


def test_a_piece_on_a_fresh_machine_ends_at_once(tmp_path):
    last, pieces = _pack(tmp_path)
    for piece in (tmp_path / "stash").iterdir():  # the stash calls went to another machine
        piece.unlink()
    start = time.monotonic()
    done = _piece(tmp_path, pieces, str(last), "575", "results/skills10/B3_policy.pt", "tools/arms/skills11.txt",
                  "B4")
    assert done.returncode == 3 and time.monotonic() - start < 10
    assert done.stderr.strip().endswith(f"holds {len(list(last.iterdir()))} pieces, not {pieces}: a fresh machine "
                                        "(the stash calls went to another)")
    assert not (tmp_path / "work").exists()


def test_pieces_join_train_evaluate_bring_back_their_files_and_continue(tmp_path):
    """Three pieces on the CPU (no wheels to install): the pieces joined into the run's copy of the tree, the arm
    continued from the joined file for what the budget leaves, its policy file and the run's files in OUT and the
    policy file kept on the machine; the second piece, on the same machine, continues from the kept file in a new
    copy of the tree; the third, on another machine (CONTINUE: the folder of the files the first brought back),
    continues the arm from its file."""
    last, pieces = _pack(tmp_path)
    small = dict(WARM="60", TAIL="60", ENVS="8", EXTRA="--warm-start-steps 5", EPISODES="1", ONLY="B4",
                 MOTION="data/BallPlay-M/pick_40", OMP_NUM_THREADS="1")
    args = (str(last), "160", "results/skills10/B3_policy.pt", "tools/arms/skills11.txt", "B4")
    (tmp_path / "wc").mkdir()
    (tmp_path / "wc" / "kernel.bin").write_bytes(b"compiled")  # what Warp's cache would hold on a GPU
    done = _piece(tmp_path, pieces, *args, **small, KEEP_CACHE="1")
    assert done.returncode == 0, done.stderr
    assert "Warp's kernel cache brought back" in done.stdout
    trained = int(re.search(r"the arms train (\d+) s", done.stdout).group(1))
    assert 30 <= trained <= 40  # 160 s less the set-up (0-10 s), WARM and TAIL
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["policy_B4.pt", "run.tar.gz", "warpcache.tgz"]
    assert "DONE" in (tmp_path / "work" / "run" / "status").read_text()
    assert "init from results/skills10/B3_policy.pt" in (tmp_path / "work" / "run" / "B4.log").read_text()
    keep = tmp_path / "keep"
    assert (keep / "policy_B4.pt").read_bytes() == (tmp_path / "out" / "policy_B4.pt").read_bytes()
    assert f"the next piece on this machine: CONTINUE={keep} WARM=40" in done.stdout
    assert re.search(r"^B4: success % 001 [\d.]+; mean [\d.]+; fell % \(all skills\) [\d.]+$", done.stdout, re.M)
    shutil.move(tmp_path / "out", tmp_path / "piece1")
    # the next call finds the same machine: the arm continues from the file kept there, the tree in work.2; it
    # names no arm that ran for its files to come back, and the arm's new file is kept all the same, its evaluation
    # printed
    kept_before = (keep / "policy_B4.pt").read_bytes()
    done = _piece(tmp_path, pieces, *args[:-1], "Z", **{**small, "WARM": "40"}, CONTINUE=str(keep))
    assert done.returncode == 0, done.stderr
    assert f"the tree in {tmp_path / 'work.2'}" in done.stdout
    log = (tmp_path / "work.2" / "run" / "B4.log").read_text()
    assert f"init from {keep / 'policy_B4.pt'} (actor and critic)" in log, log
    assert (keep / "policy_B4.pt").read_bytes() == (tmp_path / "work.2" / "run" / "B4" / "policy.pt").read_bytes()
    assert (keep / "policy_B4.pt").read_bytes() != kept_before
    assert re.search(r"^B4: success % 001 [\d.]+;", done.stdout, re.M) and "no policy file yet: Z" in done.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run.tar.gz"]
    assert "DONE" in (tmp_path / "work" / "run" / "status").read_text()  # the first piece's run as it was
    shutil.rmtree(tmp_path / "out")
    for work in (tmp_path / "work", tmp_path / "work.2"):  # a fresh copy of the tree, as on another machine
        shutil.rmtree(work)
    done = _piece(tmp_path, pieces, *args, **small, CONTINUE=str(tmp_path / "piece1"),
                  WARP_TGZ=str(tmp_path / "piece1" / "warpcache.tgz"), WARP_CACHE_PATH=str(tmp_path / "wc2"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "wc2" / "kernel.bin").read_bytes() == b"compiled"  # the cache where the next piece looks
    log = (tmp_path / "work" / "run" / "B4.log").read_text()
    assert f"init from {tmp_path / 'piece1' / 'policy_B4.pt'} (actor and critic)" in log, log


FILES = Path(__file__).resolve().parents[1] / "tools" / "round_files.sh"


def test_a_policy_file_over_16_mib_comes_back_in_parts_that_join(tmp_path):
    """A call returns files of at most 16 MiB: a larger policy file (a --skill-heads policy of 19 skills is 16.8 MB)
    comes back as parts whose concatenation is the file; a small one whole."""
    run = tmp_path / "run"
    big = os.urandom(17 * 1024 * 1024)
    for arm, data in (("YH", big), ("Y", b"small policy")):
        (run / arm).mkdir(parents=True)
        (run / arm / "policy.pt").write_bytes(data)
        (run / arm / "progress.csv").write_text("iteration,samples\n1,2048\n")
    (run / "status").write_text("09:00:31 DONE\n")
    dest = tmp_path / "out"
    done = subprocess.run(["bash", str(FILES), str(run), str(dest), "YH", "Y"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    parts = sorted(dest.glob("policy_YH.pt.part_*"))
    assert len(parts) == 2 and all(p.stat().st_size <= 16 * 1024 * 1024 for p in parts)
    assert b"".join(p.read_bytes() for p in parts) == big
    assert not (dest / "policy_YH.pt").exists() and not list(dest.glob("*.tmp"))
    assert (dest / "policy_Y.pt").read_bytes() == b"small policy"
    assert "policy_YH.pt over 16 MiB" in done.stdout and "left out" not in done.stdout


def test_more_arms_than_a_call_returns_bring_back_what_fits_and_name_the_rest(tmp_path):
    """Six 19-skill policy files (16.8 MB each) do not fit one call's 64 MiB: the run's files and the first three
    come back (in parts), the next three are named as left out, and a small file named after them still comes."""
    run = tmp_path / "run"
    size = 16_837_528
    arms = ["YQ", "YR", "YA", "YQ2", "BA", "HT"]
    for i, arm in enumerate(arms):
        (run / arm).mkdir(parents=True)
        (run / arm / "policy.pt").write_bytes(bytes([i]) * (size if arm != "HT" else 1000))
        (run / arm / "progress.csv").write_text("iteration,samples\n1,2048\n")
    (run / "status").write_text("09:00:31 DONE\n")
    dest = tmp_path / "out"
    done = subprocess.run(["bash", str(FILES), str(run), str(dest), *arms], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert (dest / "run.tar.gz").is_file()
    for i, arm in enumerate(["YQ", "YR", "YA"]):
        parts = sorted(dest.glob(f"policy_{arm}.pt.part_*"))
        assert b"".join(p.read_bytes() for p in parts) == bytes([i]) * size
    for arm in ("YQ2", "BA"):
        assert f"left out policy_{arm}.pt" in done.stdout and not list(dest.glob(f"policy_{arm}.pt*"))
    assert (dest / "policy_HT.pt").stat().st_size == 1000
    files = [f for f in dest.iterdir() if f.is_file()]
    assert len(files) <= 8 and sum(f.stat().st_size for f in files) <= 64 * 1024 * 1024
    assert "some will be left out" not in done.stdout


CONTINUE = Path(__file__).resolve().parents[1] / "tools" / "layup_continue.sh"


def _dry_python(tmp_path) -> tuple[Path, Path]:
    """A `python` to put first on PATH: it appends train_llc.py's, train_hlc.py's and the evaluations' command lines
    to a file instead of running them and runs every other python call. Returns (its folder, the file)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(
        "#!/bin/sh\n"
        f'case "$1 $2" in train_llc.py*|train_hlc.py*|"-m skillmimic.evaluate"|"-m skillmimic.evaluate_task") '
        f'echo "$@" >> "{calls}"; exit 0 ;; esac\n'
        f'exec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    return bin_dir, calls


def test_a_continued_arm_with_a_mass_curriculum_goes_on_at_the_step_its_file_records(tmp_path):
    """tools/layup_continue.sh with CONTINUE=DIR, dry (a `python` first on PATH records train_llc.py's and the
    evaluation's command lines instead of running them; every other python call runs): an arm whose flags (or
    COMMON's) hold --env.mass-curriculum.start gets --env.mass-curriculum.first-step N, N from its file's record
    in place of any first step its flags name; a file without a record, or an arm without a curriculum, leaves the
    arm's flags as they were."""
    from skillmimic import checkpoint
    from skillmimic.policy import POLICY_FORMAT

    bin_dir, calls = _dry_python(tmp_path)
    pieces = tmp_path / "piece1"
    record = {"start": 7.2, "steps": 14000, "levels": 8, "step": 9137}
    for name, entries in (("A", {"mass_curriculum": record}), ("B", {"mass_curriculum": record}),
                          ("C", {"mass_curriculum": record}), ("D", {}), ("E", {})):
        checkpoint.save_atomic({"format": POLICY_FORMAT, **entries}, pieces / f"policy_{name}.pt")
    arms = tmp_path / "arms.txt"
    arms.write_text("COMMON --env.physics.palm\n"
                    "A --env.mass-curriculum.start 7.2 --env.mass-curriculum.steps 14000\n"
                    "B --env.mass-curriculum.start 7.2 --env.mass-curriculum.first-step 5\n"
                    "C --seed 2\n"
                    "D --env.mass-curriculum.start=7.2\n"
                    "E --env.mass-curriculum.start 7.2 --env.mass-curriculum.first-step 7424\n"
                    "F --env.mass-curriculum.start 7.2\n")  # no file of F's: INIT, a new curriculum

    def continue_arms(run, **env):
        """The arms' train_llc.py command lines, by name."""
        done = subprocess.run(["bash", str(CONTINUE), str(run), "5", "init.pt", str(arms)], cwd=CONTINUE.parents[1],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                                   "CONTINUE": str(pieces), "NUM_GPUS": "1", "OMP_NUM_THREADS": "1", **env})
        assert done.returncode == 0, done.stderr
        lines = calls.read_text().splitlines()
        calls.unlink()
        return {re.search(r"--run-dir \S+/(\w+) ", line).group(1): line for line in lines
                if line.startswith("train_llc.py")}

    def first_steps(name):
        return re.findall(r"--env\.mass-curriculum\.first-step (\S+)", trains[name])

    run = tmp_path / "run"
    trains = continue_arms(run)
    assert sorted(trains) == ["A", "B", "C", "D", "E", "F", "warmup"]

    assert first_steps("A") == ["9137"] and f"--init-from {pieces / 'policy_A.pt'} " in trains["A"]
    assert first_steps("B") == ["9137"] and first_steps("C") == [] and first_steps("F") == []
    assert first_steps("D") == [] and first_steps("E") == ["7424"]
    assert "--init-from init.pt " in trains["F"]
    status = (run / "status").read_text()
    assert "A continues its mass curriculum at step 9137" in status
    assert f"D: {pieces / 'policy_D.pt'} records no mass curriculum step: its curriculum starts again" in status
    assert (f"E: {pieces / 'policy_E.pt'} records no mass curriculum step: its curriculum starts at the step its "
            "flags name") in status
    assert "DONE" in status
    arms.write_text("COMMON --env.mass-curriculum.start 7.2\nC --seed 2\n")  # the curriculum every arm's
    trains = continue_arms(tmp_path / "run2")
    assert first_steps("C") == ["9137"]


def test_kept_files_are_evaluated_on_the_cpu_per_folder_of_clips(tmp_path):
    """tools/layup_continue.sh with KEPT_EVAL, dry (as above: a `python` first on PATH records the evaluations'
    command lines): an arm that kept policy files has the folder of them evaluated on each DIR's clips, on the CPU,
    into OUTDIR/NAME.kept_BASENAME.json; an arm that kept none is evaluated as before only."""
    bin_dir, calls = _dry_python(tmp_path)
    arms = tmp_path / "arms.txt"
    arms.write_text("COMMON --env.physics.palm\nA --keep-policies --checkpoint-every 40\nB --seed 2\n")
    run = tmp_path / "run"
    (run / "A" / "policies").mkdir(parents=True)  # what train_llc.py --keep-policies leaves
    done = subprocess.run(["bash", str(CONTINUE), str(run), "5", "init.pt", str(arms)], cwd=CONTINUE.parents[1],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "NUM_GPUS": "1",
                               "OMP_NUM_THREADS": "1",
                               "KEPT_EVAL": "data/BallPlay-M/pick_40 data/BallPlay-M/layup"})
    assert done.returncode == 0, done.stderr
    evaluations = [line for line in calls.read_text().splitlines() if line.startswith("-m skillmimic.evaluate")]
    kept = sorted(line for line in evaluations if "/policies " in line)
    assert kept == sorted(
        f"-m skillmimic.evaluate --checkpoint {run / 'A' / 'policies'} --motion-dir data/BallPlay-M/{d} --episodes 64 "
        f"--device cpu --backend mujoco --json-out {run / f'A.kept_{d}.json'}" for d in ("pick_40", "layup"))
    assert sum(f"--checkpoint {run / 'B' / 'policy.pt'} " in line for line in evaluations) == 1
    assert not any(f"{run / 'B' / 'policies'}" in line for line in evaluations)
    status = (run / "status").read_text()
    assert "A's kept files evaluated (CPU)" in status and "B's kept" not in status and "DONE" in status



def test_a_high_level_controller_arm_trains_resumes_and_comes_back_with_its_checkpoint(tmp_path):
    """An arm whose flags begin with `hlc` (dry, as above) runs train_hlc.py with its flags alone (not COMMON's, not
    INIT), under the piece's time, then evaluate_task on its policy; with CONTINUE it resumes the checkpoint kept
    for it; the arm is named in OUTDIR/hlc_arms.txt, by which tools/round_files.sh brings back its checkpoint (and
    a skill policy's arm none)."""
    bin_dir, calls = _dry_python(tmp_path)
    arms = tmp_path / "arms.txt"
    arms.write_text("COMMON --env.physics.palm\nA --seed 2\nHT @gpus=0 hlc --task throwing --llc llc.pt\n")
    cont = tmp_path / "cont"
    cont.mkdir()
    (cont / "checkpoint_HT.pt").write_bytes(b"hlc checkpoint")
    (cont / "policy_HT.pt").write_bytes(b"hlc policy")  # kept beside it: not an --init-from for train_hlc.py
    run = tmp_path / "run"
    done = subprocess.run(["bash", str(CONTINUE), str(run), "5", "init.pt", str(arms)], cwd=CONTINUE.parents[1],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "NUM_GPUS": "1",
                               "OMP_NUM_THREADS": "1", "CONTINUE": str(cont)})
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert [line for line in lines if line.startswith("train_hlc.py")] == [
        f"train_hlc.py --task throwing --llc llc.pt --resume {cont / 'checkpoint_HT.pt'} --iterations 100000 "
        f"--run-dir {run / 'HT'} --overwrite"]
    assert [line for line in lines if line.startswith("-m skillmimic.evaluate_task")] == [
        f"-m skillmimic.evaluate_task --checkpoint {run / 'HT' / 'policy.pt'} --episodes 64 "
        f"--json-out {run / 'HT.eval.json'}"]
    llc = [line for line in lines if line.startswith("train_llc.py") and f"{run / 'A'}" in line]
    assert len(llc) == 1 and "--init-from init.pt" in llc[0] and "hlc" not in llc[0]
    assert (run / "hlc_arms.txt").read_text() == "HT\n"
    status = (run / "status").read_text()
    assert f"HT resumes {cont / 'checkpoint_HT.pt'}" in status and "HT evaluated" in status
    for arm in ("HT", "A"):  # what the two runs would have left
        (run / arm).mkdir(exist_ok=True)
        (run / arm / "policy.pt").write_bytes(f"{arm} policy".encode())
        (run / arm / "checkpoint.pt").write_bytes(f"{arm} checkpoint".encode())
    dest = tmp_path / "out"
    done = subprocess.run(["bash", str(FILES), str(run), str(dest), "HT", "A"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["checkpoint_HT.pt", "policy_A.pt", "policy_HT.pt", "run.tar.gz"]
    assert (dest / "checkpoint_HT.pt").read_bytes() == b"HT checkpoint"
