"""Smoke tests of the benchmark command, run as a user would, in a subprocess."""

import json
import pytest

from scripts import run_python


def _run(*args, timeout=300):
    return run_python("-m", "skillmimic.bench", *args, timeout=timeout)


def test_help_parses():
    r = _run("--help")
    assert r.returncode == 0 and "--num-worlds" in r.stdout


@pytest.mark.parametrize("backend, hand", [("mujoco", "rigid"), ("mujoco_warp", "full")])
def test_bench_runs_a_few_steps_on_the_cpu(tmp_path, backend, hand):
    out = tmp_path / "bench.json"
    r = _run("--backend", backend, "--device", "cpu", "--num-worlds", "2", "--steps", "4", "--warmup", "1",
             "--reinit-every", "2", "--profile", "--json-out", str(out), "--hand", hand)
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(out.read_text())
    assert result["backend"] == backend and result["num_worlds"] == 2
    assert result["hand"] == hand and result["nv"] == {"full": 168, "rigid": 78}[hand]
    assert result["env_steps_per_s"] > 0 and result["unstable_worlds"] == 0
    assert set(result["phase_ms_per_step"]) >= {"physics (substeps + forward)", "re-init (gather + write + forward)"}
    assert "env steps/s" in r.stdout
