"""tools/past_clip_share.py: where a policy's training samples go, past the clips' ends or on them (CPU)."""

import re
import subprocess

from paths import DATA, ROOT
from scripts import importable_env, run_python


def _tool(*args, cwd) -> subprocess.CompletedProcess:
    return run_python(ROOT / "tools" / "past_clip_share.py", *args, cwd=cwd, env=importable_env())


def _shares(stdout: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"^\| ([^|]+?) \| ([\d.]+)% \|", stdout, re.M)}


def test_past_clip_share_counts_the_steps_played_past_the_clips_end(tmp_path):
    layup = ROOT / "skillmimic" / "assets" / "llc_layup.pt"  # it stands after its layup: episodes pass the clip
    args = ("--checkpoint", layup, "--motion-dir", DATA / "layup", "--envs", 16, "--steps", 60, "--burn-in", 0)
    out = _tool(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    shares = _shares(out.stdout)
    assert set(shares) == {"layup", "all"} and 0.0 < shares["all"] < 100.0 and shares["all"] == shares["layup"]
    looped = _tool(*args, "--loops", 31, cwd=tmp_path)  # a looped clip has no past
    assert looped.returncode == 0, looped.stderr[-2000:]
    assert _shares(looped.stdout)["all"] == 0.0
    bad = _tool(*args[:2], "--motion-dir", tmp_path / "none", cwd=tmp_path)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith("error: --motion-dir")
    bad = _tool(*args, "--loops", 64, cwd=tmp_path)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith("error: --loops [64]")
