"""Training on several processes: torchrun with 2 gloo processes on the CPU, as a user with two GPUs runs it
(there with NCCL), and the collectives of skillmimic.distributed checked against one process."""

import math
import os
import sys

import pytest
import torch
import torch.multiprocessing as mp

from paths import ROOT
from scripts import run_python

sys.path.insert(0, str(ROOT))
import train_hlc  # noqa: E402
import train_llc  # noqa: E402
from skillmimic import checkpoint, distributed, runs  # noqa: E402
from skillmimic.envs.observations import SKILL_OBS_DIM  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402
from skillmimic.normalizer import EmpiricalNormalization  # noqa: E402
from skillmimic.policy import SkillPolicy, save_policy  # noqa: E402

LLC_FAST = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2",
            "--device", "cpu", "--checkpoint-every", "1", "--hidden", "64", "64", "--warm-start-steps", "20"]


def _torchrun(script, *args, nproc=2):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return run_python("-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", script, *args,
                      env=env)


def _load(run_dir, fmt):
    return checkpoint.load(run_dir / "checkpoint.pt", fmt)


def test_two_processes_share_one_model_write_one_checkpoint_and_resume_every_rank(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r = _torchrun("train_llc.py", *LLC_FAST, "--iterations", "2", "--run-dir", str(b))
    assert r.returncode == 0, r.stderr
    ckpt = _load(b, train_llc.TRAIN_FORMAT)
    assert ckpt["world_size"] == 2 and ckpt["num_envs"] == 4 and len(ckpt["ranks"]) == 2
    assert ckpt["global_step"] == 2 * 8 * 4  # iterations x steps x environments of all ranks
    # Both ranks hold the same parameters and normaliser statistics, those of the checkpoint.
    d0, d1 = (rank["model_digest"] for rank in ckpt["ranks"])
    assert d0 == d1 == runs.digest(ckpt["agent"])
    # ... but simulate different environments (own seeds): their observations differ.
    assert not torch.equal(ckpt["ranks"][0]["obs"], ckpt["ranks"][1]["obs"])
    # One writer: one checkpoint, one policy, one progress row per iteration.
    assert sorted(p.name for p in b.iterdir()) == ["checkpoint.pt", "policy.pt", "progress.csv", "tb"]
    assert len((b / "progress.csv").read_text().splitlines()) == 1 + 2
    # Resumed on two ranks = uninterrupted, to the bit (CPU, gloo).
    r = _torchrun("train_llc.py", *LLC_FAST, "--iterations", "3", "--run-dir", str(b),
                  "--resume", str(b / "checkpoint.pt"))
    assert r.returncode == 0, r.stderr
    r = _torchrun("train_llc.py", *LLC_FAST, "--iterations", "3", "--run-dir", str(a))
    assert r.returncode == 0, r.stderr
    ca, cb = _load(a, train_llc.TRAIN_FORMAT), _load(b, train_llc.TRAIN_FORMAT)
    assert ca["iteration"] == cb["iteration"] == 3
    for k, v in ca["agent"].items():
        assert torch.equal(v, cb["agent"][k]), k
    for ra, rb in zip(ca["ranks"], cb["ranks"]):
        assert torch.equal(ra["obs"], rb["obs"])
    # A single process cannot continue a two-process run: one line says what to do.
    r = run_python("train_llc.py", *LLC_FAST, "--iterations", "4", "--run-dir", b, "--resume", b / "checkpoint.pt")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].endswith("start 2 process(es) (torchrun --nproc_per_node) to continue it")


def test_two_processes_share_the_privileged_critic_s_reference_normaliser(tmp_path):
    """--critic-reference: the reference features' normaliser (train_llc.Agent.ref_norm) merges the batches of all
    ranks, as the observation normaliser does, so the ranks keep one model."""
    r = _torchrun("train_llc.py", *LLC_FAST, "--critic-reference", "--iterations", "2", "--run-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    ckpt = _load(tmp_path, train_llc.TRAIN_FORMAT)
    d0, d1 = (rank["model_digest"] for rank in ckpt["ranks"])
    assert d0 == d1 == runs.digest(ckpt["agent"])
    assert float(ckpt["agent"]["ref_norm.count"]) == 2 * 8 * 4  # every sample of both ranks' rollouts


def test_two_processes_train_the_high_level_controller(tmp_path):
    llc = tmp_path / "llc.pt"
    save_policy(SkillPolicy(SKILL_OBS_DIM, 156, (32,), math.pi / 2, 2.0), llc)
    r = _torchrun("train_hlc.py", "--task", "heading", "--llc", str(llc), "--num-envs", "4", "--num-steps", "4",
                  "--num-minibatches", "2", "--update-epochs", "2", "--device", "cpu", "--hidden", "32", "32",
                  "--iterations", "2", "--run-dir", str(tmp_path / "hlc"))
    assert r.returncode == 0, r.stderr
    ckpt = _load(tmp_path / "hlc", train_hlc.TRAIN_FORMAT)
    assert ckpt["iteration"] == 2 and ckpt["world_size"] == 2
    d0, d1 = (rank["model_digest"] for rank in ckpt["ranks"])
    assert d0 == d1 == runs.digest(ckpt["agent"])


def test_an_uneven_split_of_environments_is_refused():
    ranks = distributed.Ranks(rank=0, world_size=2)
    assert distributed.split_envs(8, ranks, None, None) == (8, 4)
    with pytest.raises(UserError, match="does not split evenly over 2 processes"):
        distributed.split_envs(7, ranks, None, None)


def _collectives(rank, world, init_file, data, grads, out):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    norm = EmpiricalNormalization(3, reduce=distributed.all_reduce_sum_)
    norm.update(data[rank])
    norm.update(data[rank] * 2 + 1)
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = grads[rank].clone()
    distributed.average_gradients_([p])
    out[rank] = {"mean": norm.mean, "var": norm.var, "count": norm.count, "grad": p.grad}
    torch.distributed.destroy_process_group()


def test_normaliser_statistics_and_gradients_are_those_of_all_ranks_together(tmp_path):
    gen = torch.Generator().manual_seed(0)
    data = [torch.randn(5, 3, generator=gen) * 3 + 1, torch.randn(7, 3, generator=gen) - 2]
    grads = [torch.randn(4, generator=gen), torch.randn(4, generator=gen)]
    with mp.Manager() as manager:
        shared = manager.dict()
        mp.spawn(_collectives, args=(2, tmp_path / "init", data, grads, shared), nprocs=2)
        out = dict(shared)
    one = EmpiricalNormalization(3)  # one process seeing both ranks' batches
    one.update(torch.cat(data))
    one.update(torch.cat(data) * 2 + 1)
    for rank in range(2):
        assert torch.allclose(out[rank]["mean"], one.mean, atol=1e-5)
        assert torch.allclose(out[rank]["var"], one.var, rtol=1e-4)
        assert float(out[rank]["count"]) == 24
        assert torch.allclose(out[rank]["grad"], (grads[0] + grads[1]) / 2)


def test_the_profile_times_the_all_reduces_under_torchrun_and_rank_0_alone_prints(tmp_path):
    """tools/profile_llc.py under torchrun (issue 20: the share of an iteration in the all-reduces)."""
    r = _torchrun("tools/profile_llc.py", *LLC_FAST, "--iterations", "3", "--burn-in", "1", "--warm-start-steps", "0",
                  "--run-dir", str(tmp_path / "run"), "--motion-dir", str(ROOT / "data" / "BallPlay-M" / "layup"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("| phase | ms per iteration | share |") == 1  # rank 0's table alone
    for phase in ("all-reduce (gradients)", "all-reduce (normalisers, log)"):
        assert f"| {phase} |" in r.stdout, r.stdout[-1500:]
