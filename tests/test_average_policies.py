"""tools/average_policies.py: the weighted mean of policy files of one lineage, and the files it refuses."""

import subprocess

import torch
from paths import ROOT
from policies import write_layup_policy
from scripts import run_python

from skillmimic import checkpoint, torchfile
from skillmimic.policy import load_policy

TOOL = ROOT / "tools" / "average_policies.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return run_python(TOOL, *args, cwd=None, timeout=120)


def _two_files(tmp_path):
    """A policy file and a copy whose actor, critic and normaliser moved (as a later piece of its run would)."""
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    write_layup_policy(a)
    moved = torchfile.load(a)
    torch.manual_seed(1)
    for net in ("actor", "critic"):
        moved[net] = {k: v + 0.1 * torch.randn_like(v) for k, v in moved[net].items()}
    moved["obs_norm"] = {**moved["obs_norm"], "mean": moved["obs_norm"]["mean"] + 1.0,
                         "count": moved["obs_norm"]["count"] * 2}
    checkpoint.save_atomic(moved, b)
    return a, b


def test_the_weighted_mean_of_two_files_is_a_policy(tmp_path):
    a, b = _two_files(tmp_path)
    out = tmp_path / "soup.pt"
    done = _run(out, a, b, "--weights", 3, 1)
    assert done.returncode == 0, done.stderr
    fa, fb, soup = torchfile.load(a), torchfile.load(b), torchfile.load(out)
    for net in ("actor", "critic"):
        for k in fa[net]:
            torch.testing.assert_close(soup[net][k], 0.75 * fa[net][k] + 0.25 * fb[net][k])
    torch.testing.assert_close(soup["obs_norm"]["mean"], fa["obs_norm"]["mean"] + 0.25)
    assert float(soup["obs_norm"]["count"]) == float(fb["obs_norm"]["count"])
    assert [(e["file"], e["weight"]) for e in soup["averaged_from"]] == [(str(a), 3.0), (str(b), 1.0)]
    assert soup["skill_labels"] == fa["skill_labels"]
    policy = load_policy(out, "cpu")  # loads as any policy file, and acts as the mean's actor
    assert torch.isfinite(policy(torch.zeros(2, policy.num_obs))).all()


def test_files_of_other_lineages_and_bad_arguments_are_one_line(tmp_path):
    a, b = _two_files(tmp_path)
    other = torchfile.load(b)
    other["skill_labels"] = [13]
    checkpoint.save_atomic(other, tmp_path / "other.pt")
    cases = [((tmp_path / "s.pt", a, tmp_path / "other.pt"), "its skill_labels"),
             ((tmp_path / "s.pt", a), "at least two"),
             ((a, a, b), "would overwrite"),
             ((tmp_path / "s.pt", a, b, "--weights", 1), "1 weights for 2 files"),
             ((tmp_path / "no" / "s.pt", a, b), "does not exist"),
             ((tmp_path / "s.pt", a, tmp_path / "missing.pt"), "no such file")]
    for args, words in cases:
        done = _run(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr, (args, done.stderr)
    assert not (tmp_path / "s.pt").exists()
