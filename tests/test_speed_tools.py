"""The speed tools: tools/profile_llc.py (train_llc.py run with its pieces timed, a table of where an iteration's
time goes) and tools/tf32_check.py (how far TF32, or bf16 autocast, moves a policy's outputs)."""

import re
import subprocess

from paths import DATA, ROOT
from scripts import importable_env, run_python
from skillmimic import checkpoint


def _tool(name: str, *args, cwd) -> subprocess.CompletedProcess:
    """tools/NAME run as a user runs it, in `cwd`, with the package beside it importable."""
    return run_python(ROOT / "tools" / name, *args, cwd=cwd, env=importable_env())


def _profile(tmp_path, *extra) -> subprocess.CompletedProcess:
    """A tiny CPU run of the profile: 4 environments, 3 iterations, burn-in 1, a small network."""
    return _tool("profile_llc.py", *extra, "--burn-in", 1, "--num-envs", 4, "--iterations", 3, "--hidden", 32, 32,
                 "--warm-start-steps", 0, "--run-dir", tmp_path / "run", "--motion-dir", DATA / "layup",
                 "--device", "cpu", cwd=tmp_path)


def test_the_profile_splits_an_iteration_into_its_pieces(tmp_path):
    out = _profile(tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = dict(re.findall(r"^\| ([^|]+?) \| [\d.]+ \| ([\d.]+)% \|$", out.stdout, re.M))
    for phase in ("physics", "reward", "observation", "policy forward (rollout)", "policy forward (update)",
                  "backward", "optimizer step", "GAE"):
        assert phase in rows, f"{phase} missing from\n{out.stdout[-1500:]}"
    assert abs(sum(float(v) for v in rows.values()) - 100.0) < 1.0  # the pieces are the whole
    assert "2 iterations after a burn-in of 1" in out.stdout
    assert (tmp_path / "run" / "policy.pt").is_file()  # train_llc.py ran as it does


def test_the_profile_passes_update_bf16_to_train_llc(tmp_path):
    """Every flag but --burn-in and --kernels is train_llc.py's: --update-bf16 (the update's forward passes in
    bf16) reaches the run, the update's pieces timed as without it."""
    out = _profile(tmp_path, "--update-bf16")
    assert out.returncode == 0, out.stderr[-2000:]
    for phase in ("policy forward (update)", "value forward (update)", "loss (update)", "backward"):
        assert f"| {phase} |" in out.stdout, f"{phase} missing from\n{out.stdout[-1500:]}"
    ckpt = checkpoint.load(tmp_path / "run" / "checkpoint.pt", "skillmimic-llc-train/1")  # train_llc.TRAIN_FORMAT
    assert ckpt["args"]["update_bf16"] is True


def test_kernels_profiles_one_iteration_and_leaves_it_out_of_the_averages(tmp_path):
    out = _profile(tmp_path, "--kernels", 5)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch's profiler over one iteration: 0 kernel and graph launches" in out.stdout  # a CPU launches none
    table = out.stdout.split("torch's profiler over one iteration")[1].split("iterations after")[0]
    assert "Self CPU" in table and "aten::" in table
    assert "1 iterations after a burn-in of 2" in out.stdout  # the profiled iteration is not averaged


def test_a_bad_burn_in_is_one_line_before_any_work(tmp_path):
    out = _tool("profile_llc.py", "--burn-in", "x", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip() == "error: --burn-in takes a count of at least 1"
    out = _tool("profile_llc.py", "--burn-in", 3, "--iterations", 3, "--run-dir", tmp_path / "run", cwd=tmp_path)
    assert out.returncode == 2 and "--iterations 3: must exceed --burn-in 3" in out.stderr
    out = _tool("profile_llc.py", "--kernels", 0, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip() == "error: --kernels takes a count of at least 1"
    out = _tool("profile_llc.py", "--kernels", 5, "--burn-in", 2, "--iterations", 3, "--run-dir", tmp_path / "run",
                cwd=tmp_path)
    assert out.returncode == 2
    assert "--iterations 3: must exceed --burn-in 2 + 1 (--kernels profiles one more)" in out.stderr
    assert not (tmp_path / "run").exists()


def test_tf32_check_compares_a_policy_s_outputs_and_refuses_a_bad_batch_in_one_line(tmp_path):
    policy = ROOT / "skillmimic/assets/llc_policy.pt"
    out = _tool("tf32_check.py", "--checkpoint", policy, "--device", "cpu", "--batch", 64, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    # A CPU computes in FP32 either way: nothing moves, and the line says so.
    assert out.stdout.startswith("cpu (FP32 either way): TF32 against FP32 on 64 normalised observations")
    assert "change by 0.00e+00 on average" in out.stdout and "standard deviation of 0.000e+00" in out.stdout
    # bf16 autocast (train_llc.py's --update-bf16) rounds on a CPU too: the means and log-probabilities move.
    out = _tool("tf32_check.py", "--checkpoint", policy, "--device", "cpu", "--batch", 64, "--bf16", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("cpu: bf16 autocast against FP32 on 64 normalised observations")
    assert "change by 0.00e+00" not in out.stdout and "standard deviation of 0.000e+00" not in out.stdout
    out = _tool("tf32_check.py", "--checkpoint", policy, "--batch", 1, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip() == "error: --batch 1: must be at least 2"


def _progress(path, seconds_per_iteration: list[float], samples_per_iteration: int):
    """A progress.csv whose iteration k took seconds_per_iteration[k - 1]; samples_per_s is the mean since the start."""
    rows, t = ["iteration,samples,mean_reward,samples_per_s"], 0.0
    for k, dt in enumerate(seconds_per_iteration, 1):
        t += dt
        rows.append(f"{k},{k * samples_per_iteration},0.5,{k * samples_per_iteration / t}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_the_scaling_table_times_the_steady_iterations(tmp_path):
    # 1 GPU: 100 samples an iteration, 1 s each after a 10 s first iteration; 2 GPUs: 200 in 1.25 s (80%).
    one = _progress(tmp_path / "one.csv", [10.0] + [1.0] * 9, 100)
    two = _progress(tmp_path / "two.csv", [12.0] + [1.25] * 9, 200)
    out = _tool("scaling_table.py", f"1={one}", f"2={two}", "--from-iteration", 3, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "| 1 | 100 | 100 | - | 3-10 |" in out.stdout
    assert "| 2 | 160 | 80 | 80.0% | 3-10 |" in out.stdout  # the first iteration's start-up left out
    bad = _tool("scaling_table.py", f"1={one}", "two=x.csv", cwd=tmp_path)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines() == [
        "error: two=x.csv: expected GPUS=PROGRESS.csv with GPUS a positive whole number"]
    short = _tool("scaling_table.py", f"1={one}", "--from-iteration", 10, cwd=tmp_path)
    assert short.returncode != 0 and "needs at least two iterations from 10 on" in short.stderr
