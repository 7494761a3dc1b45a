"""The speed tools: tools/profile_llc.py (train_llc.py run with its pieces timed, a table of where an iteration's
time goes) and tools/tf32_check.py (how far TF32 moves a policy's outputs)."""

import os
import re
import subprocess
import sys

from paths import DATA, ROOT


def test_the_profile_splits_an_iteration_into_its_pieces(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools/profile_llc.py"), "--burn-in", "1", "--num-envs", "4", "--iterations", "3",
         "--hidden", "32", "32", "--warm-start-steps", "0", "--run-dir", str(tmp_path / "run"),
         "--motion-dir", str(DATA / "layup"), "--device", "cpu"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = dict(re.findall(r"^\| ([^|]+?) \| [\d.]+ \| ([\d.]+)% \|$", out.stdout, re.M))
    for phase in ("physics", "reward", "observation", "policy forward (rollout)", "policy forward (update)",
                  "backward", "optimizer step", "GAE"):
        assert phase in rows, f"{phase} missing from\n{out.stdout[-1500:]}"
    assert abs(sum(float(v) for v in rows.values()) - 100.0) < 1.0  # the pieces are the whole
    assert "2 iterations after a burn-in of 1" in out.stdout
    assert (tmp_path / "run" / "policy.pt").is_file()  # train_llc.py ran as it does


def test_kernels_profiles_one_iteration_and_leaves_it_out_of_the_averages(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools/profile_llc.py"), "--kernels", "5", "--burn-in", "1", "--num-envs", "4",
         "--iterations", "3", "--hidden", "32", "32", "--warm-start-steps", "0", "--run-dir", str(tmp_path / "run"),
         "--motion-dir", str(DATA / "layup"), "--device", "cpu"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch's profiler over one iteration: 0 kernel and graph launches" in out.stdout  # a CPU launches none
    table = out.stdout.split("torch's profiler over one iteration")[1].split("iterations after")[0]
    assert "Self CPU" in table and "aten::" in table
    assert "1 iterations after a burn-in of 2" in out.stdout  # the profiled iteration is not averaged


def test_a_bad_burn_in_is_one_line_before_any_work(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    tool = [sys.executable, str(ROOT / "tools/profile_llc.py")]
    out = subprocess.run([*tool, "--burn-in", "x"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 2 and out.stderr.strip() == "error: --burn-in takes a count of at least 1"
    out = subprocess.run([*tool, "--burn-in", "3", "--iterations", "3", "--run-dir", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 2 and "--iterations 3: must exceed --burn-in 3" in out.stderr
    out = subprocess.run([*tool, "--kernels", "0"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 2 and out.stderr.strip() == "error: --kernels takes a count of at least 1"
    out = subprocess.run([*tool, "--kernels", "5", "--burn-in", "2", "--iterations", "3", "--run-dir",
                          str(tmp_path / "run")], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 2
    assert "--iterations 3: must exceed --burn-in 2 + 1 (--kernels profiles one more)" in out.stderr
    assert not (tmp_path / "run").exists()


def test_tf32_check_compares_a_policy_s_outputs_and_refuses_a_bad_batch_in_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    policy = ROOT / "skillmimic/assets/llc_policy.pt"
    tool = [sys.executable, str(ROOT / "tools/tf32_check.py"), "--checkpoint", str(policy)]
    out = subprocess.run([*tool, "--device", "cpu", "--batch", "64"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    # A CPU computes in FP32 either way: nothing moves, and the line says so.
    assert out.stdout.startswith("cpu (FP32 either way): TF32 against FP32 on 64 normalised observations")
    assert "change by 0.00e+00 on average" in out.stdout and "standard deviation of 0.000e+00" in out.stdout
    out = subprocess.run([*tool, "--batch", "1"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 2 and out.stderr.strip() == "error: --batch 1: must be at least 2"
