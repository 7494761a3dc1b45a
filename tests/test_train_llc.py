"""train_llc.py: GAE by hand, and the script run as a user runs it (a subprocess, a few environments, CPU)."""

import json
import shutil
import sys

import pytest
import torch

from paths import ROOT
from scripts import importable_env, run_python

sys.path.insert(0, str(ROOT))
import train_llc  # noqa: E402
from skillmimic import checkpoint  # noqa: E402
from skillmimic.cli import parse  # noqa: E402
from skillmimic.policy import POLICY_FORMAT  # noqa: E402

FAST = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2",
        "--device", "cpu", "--checkpoint-every", "1", "--hidden", "64", "64", "--warm-start-steps", "20"]


def _run(*args, cwd=ROOT):
    return run_python(ROOT / "train_llc.py", *args, cwd=cwd, env=importable_env())


def test_gae_by_hand_with_a_fall_and_a_time_out():
    g, lam = 0.9, 0.5
    # One environment, three steps: a fall ends the first episode at t=0, a time-out the second at t=2.
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [2.0]])
    dones = torch.tensor([[1.0], [0.0], [1.0]])
    timeouts = torch.tensor([[0.0], [0.0], [1.0]])
    next_value = torch.tensor([4.0])
    adv, ret = train_llc.gae(rewards, values, dones, timeouts, next_value, g, lam)
    # t=2: time-out, reward bootstrapped with gamma * V(s_2): r = 3 + 0.9 * 2 = 4.8; no next value.
    d2 = 4.8 - 2.0
    # t=1: delta = 2 + 0.9 * 2.0 - 1.0 = 2.8; advantage = 2.8 + 0.9 * 0.5 * d2.
    d1 = 2.0 + 0.9 * 2.0 - 1.0
    a1 = d1 + g * lam * d2
    # t=0: a fall: no bootstrap at all.
    a0 = 1.0 - 0.5
    assert torch.allclose(adv.flatten(), torch.tensor([a0, a1, d2]))
    assert torch.allclose(ret, adv + values)


@pytest.fixture(scope="module")
def two_iterations(tmp_path_factory):
    """A run of two iterations, for the tests to copy; its learning rate comes from YAML as 5e-5 (the default),
    which YAML reads as a string."""
    d = tmp_path_factory.mktemp("two")
    (d / "lr.yaml").write_text("learning_rate: 5e-5\n")
    r = _run(*FAST, "--config", d / "lr.yaml", "--iterations", "2", "--run-dir", d / "run")
    assert r.returncode == 0, r.stderr
    assert "2/2" in r.stdout
    assert checkpoint.load(d / "run" / "checkpoint.pt", train_llc.TRAIN_FORMAT)["args"]["learning_rate"] == 5e-5
    return d / "run"


def _copy(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def _one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def _iterations(run) -> list[str]:
    return [row.split(",")[0] for row in (run / "progress.csv").read_text().splitlines()[1:]]


def test_two_iterations_write_checkpoint_and_policy_and_resume_exactly(two_iterations, tmp_path):
    a, b = tmp_path / "a", _copy(two_iterations, tmp_path)
    r = _run(*FAST, "--iterations", "3", "--run-dir", str(a))
    assert r.returncode == 0, r.stderr
    policy = checkpoint.load(b / "policy.pt", POLICY_FORMAT)
    assert (b / "policy.pt").stat().st_size < 16 * 2**20
    assert policy["num_actions"] == 66 and policy["hand"] == "rigid"  # the default hand
    assert checkpoint.load(b / "checkpoint.pt", train_llc.TRAIN_FORMAT)["iteration"] == 2
    # As if b had been killed after logging iteration 3 and while writing its checkpoint: a row after the
    # checkpoint's iteration and the temporary file of the write.
    with (b / "progress.csv").open("a") as f:
        f.write("3,96,0.5,7,100\n")
    (b / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    # Resumed from another folder with no --run-dir: it continues in b (its motion folder found from the package).
    r = _run(*FAST, "--iterations", "3", "--resume", b / "checkpoint.pt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"resuming {b / 'checkpoint.pt'} after iteration 2 (64 samples), up to iteration 3; run folder {b}\n" \
        in r.stdout, r.stdout
    assert not (tmp_path / "runs").exists()
    assert _iterations(b) == ["1", "2", "3"]
    assert not list(b.glob(".*.tmp"))
    ca = checkpoint.load(a / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    cb = checkpoint.load(b / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    assert ca["iteration"] == cb["iteration"] == 3 and ca["global_step"] == cb["global_step"]
    for k, v in ca["agent"].items():
        assert torch.equal(v, cb["agent"][k]), k  # resumed run = uninterrupted run, to the bit (CPU)
    assert list((b / "tb").iterdir())


def test_resume_keeps_the_run_settings(two_iterations, tmp_path):
    run = _copy(two_iterations, tmp_path)
    # Resumed with other network flags: the run keeps its own (64, 64) network and continues. (A checkpoint of
    # another model or kind is refused in one line: test_user_errors.py.)
    wider = [a if a != "64" else "32" for a in FAST]
    r = _run(*wider, "--iterations", "3", "--resume", str(run / "checkpoint.pt"))
    assert r.returncode == 0, r.stderr
    ckpt = checkpoint.load(run / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    assert ckpt["iteration"] == 3 and ckpt["hidden"] == [64, 64]


def test_tf32_is_a_speed_setting_a_resumed_run_takes_from_the_command_line(two_iterations, tmp_path):
    run = _copy(two_iterations, tmp_path)
    assert checkpoint.load(run / "checkpoint.pt", train_llc.TRAIN_FORMAT)["args"]["tf32"] is True  # the default
    r = _run(*FAST, "--iterations", "3", "--no-tf32", "--resume", str(run / "checkpoint.pt"))
    assert r.returncode == 0, r.stderr
    assert checkpoint.load(run / "checkpoint.pt", train_llc.TRAIN_FORMAT)["args"]["tf32"] is False
    assert "tf32" in train_llc.RESUME_OVERRIDES and "compile" in train_llc.RESUME_OVERRIDES


def test_update_bf16_trains_end_to_end_and_is_a_speed_setting_taken_on_resume(two_iterations, tmp_path):
    """--update-bf16 (off by default) runs an iteration's update in bf16 and writes a finite checkpoint that moved;
    like --tf32, a resumed run takes it from its command line."""
    run = _copy(two_iterations, tmp_path)
    before = checkpoint.load(run / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    assert before["args"]["update_bf16"] is False  # the default
    r = _run(*FAST, "--iterations", "3", "--update-bf16", "--resume", str(run / "checkpoint.pt"))
    assert r.returncode == 0, r.stderr
    after = checkpoint.load(run / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    assert after["iteration"] == 3 and after["args"]["update_bf16"] is True
    assert checkpoint.non_finite(after) is None  # (a run that diverged is refused before it saves, too)
    assert after["agent"]["actor.0.weight"].dtype == torch.float32  # FP32 master weights
    # (iteration 3 is the critic's warm-up's last: the actor stays)
    assert not torch.equal(after["agent"]["critic.0.weight"], before["agent"]["critic.0.weight"])
    assert "update_bf16" in train_llc.RESUME_OVERRIDES


def test_a_diverged_run_stops_in_one_line_and_keeps_its_last_good_checkpoint(two_iterations, tmp_path):
    run = _copy(two_iterations, tmp_path)
    # The next update diverges: a learning rate of 1e30, in the run's settings and in the optimiser's state.
    ckpt = checkpoint.load(run / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    ckpt["args"]["learning_rate"] = 1e30
    for group in ckpt["optimizer"]["param_groups"]:
        group["lr"] = 1e30
    checkpoint.save_atomic(ckpt, run / "checkpoint.pt")
    policy = (run / "policy.pt").read_bytes()
    r = _run(*FAST, "--iterations", "4", "--resume", run / "checkpoint.pt")
    assert r.returncode == 1
    line = _one_line(r)
    assert line.startswith("error: iteration 3: non-finite ") and line.endswith(
        f"{run} keeps the checkpoint and policy of iteration 2"), line
    assert checkpoint.load(run / "checkpoint.pt", train_llc.TRAIN_FORMAT)["iteration"] == 2
    assert (run / "policy.pt").read_bytes() == policy
    assert _iterations(run) == ["1", "2"] and not list(run.glob(".*.tmp"))
    # What the guard checks before every save, on its own: the first tensor with a NaN or Inf, by name.
    assert checkpoint.non_finite(ckpt) is None
    ckpt["agent"]["critic.2.bias"][0] = torch.inf
    assert checkpoint.non_finite(ckpt) == "agent.critic.2.bias"


def test_a_folder_that_holds_a_run_is_replaced_only_with_overwrite(two_iterations, tmp_path):
    run = _copy(two_iterations, tmp_path)  # (without --overwrite: refused, in test_user_errors.py)
    r = _run(*FAST, "--iterations", "1", "--run-dir", run, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert checkpoint.load(run / "checkpoint.pt", train_llc.TRAIN_FORMAT)["iteration"] == 1
    assert _iterations(run) == ["1"]


def test_a_checkpoint_of_another_mjcf_of_its_hand_is_refused_in_one_line(two_iterations, tmp_path):
    run = _copy(two_iterations, tmp_path)
    ckpt = checkpoint.load(run / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    ckpt["model_sha256"] = "0" * 64  # the model file changed since
    checkpoint.save_atomic(ckpt, tmp_path / "other.pt")
    r = _run(*FAST, "--iterations", "4", "--resume", tmp_path / "other.pt")
    assert r.returncode == 2
    assert "other.pt: trained on the rigid hand (66 actions, MJCF sha256 000000000000); this model is the rigid hand" \
        in _one_line(r)


@pytest.mark.parametrize("payload", [b"not a checkpoint", None])
def test_unreadable_checkpoint(tmp_path, payload):
    path = tmp_path / "c.pt"
    if payload is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(payload)
    with pytest.raises(checkpoint.CheckpointError, match=str(path)):
        checkpoint.load(path, train_llc.TRAIN_FORMAT)


def test_environment_count_and_device_have_one_flag_each(capsys):
    with pytest.raises(SystemExit):
        parse(train_llc.Args, ["--help"])
    text = capsys.readouterr().out
    assert "--env.fall-distance" in text and "--env.num-envs" not in text and "--env.device" not in text


def test_kept_policies_make_a_learning_curve(tmp_path):
    """On the rigid hand (--env.hand): the policies record it, and the evaluation runs them on it."""
    r = _run(*FAST, "--iterations", "2", "--run-dir", str(tmp_path), "--keep-policies", "--env.hand", "rigid")
    assert r.returncode == 0, r.stderr
    kept = sorted(p.name for p in (tmp_path / "policies").iterdir())
    assert kept == ["iter_000001.pt", "iter_000002.pt"]
    policy = checkpoint.load(tmp_path / "policies" / kept[0], POLICY_FORMAT)
    assert policy["hand"] == "rigid" and policy["num_actions"] == 66 and len(policy["model_sha256"]) == 64
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    assert lines[0].startswith("iteration,samples,") and [r.split(",")[:2] for r in lines[1:]] == [["1", "32"],
                                                                                                   ["2", "64"]]
    out = tmp_path / "curve.json"
    r = run_python("-m", "skillmimic.evaluate", "--checkpoint", tmp_path / "policies", "--episodes", "2", "--horizon",
                   "5", "--device", "cpu", "--json-out", out, timeout=300)
    assert r.returncode == 0, r.stderr
    curve = json.loads(out.read_text())["curve"]
    assert [c["iteration"] for c in curve] == [1, 2]
    assert [c["samples"] for c in curve] == [4 * 8, 2 * 4 * 8]
    assert curve[0]["skills"][0]["label"] == "031"


def test_resume_drops_the_environment_size_and_device_that_older_checkpoints_saved():
    from skillmimic import runs
    from skillmimic.cli import merge

    old = {"args": {"seed": 3, "device": "cpu", "env": {"num_envs": 0, "device": "auto", "hand": "full"}}}
    saved = runs.saved_args(old, train_llc.RESUME_OVERRIDES)
    assert saved == {"seed": 3, "env": {"hand": "full"}}
    args = merge(train_llc.Args(), saved, "checkpoint.pt")
    assert args.seed == 3 and args.env.hand == "full"


def test_compiled_update_loss_gives_the_eager_loss_statistics_and_gradients(needs_torch_compile):
    """--compile's update loss (train_llc.loss_function(True)): the eager ppo_loss's value, statistics and
    gradients to float rounding, the critic's warm-up (actor_on 0) too."""
    torch.manual_seed(0)
    agent = train_llc.Agent(20, 6, (32, 32), log_std=-1.0, learn_std=True)
    b = 64
    obs, act, mu_old = torch.randn(b, 20), torch.randn(b, 6) * 0.3, torch.randn(b, 6) * 0.3
    logp_old, adv, ret_n = torch.randn(b) - 3.0, torch.randn(b), torch.randn(b)
    old_log_std = torch.full((6,), -1.1)
    for actor_on in (0.0, 1.0):
        results = []
        for compiled in (False, True):
            agent.zero_grad(set_to_none=True)
            loss, stats = train_llc.loss_function(compiled)(agent, obs, act, logp_old, adv, ret_n, mu_old,
                                                            old_log_std, actor_on, 0.2, 10.0, 5.0)
            loss.backward()
            grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in agent.parameters()]
            results.append((loss.detach(), stats, grads, agent.log_std.grad))
        (l0, s0, g0, std0), (l1, s1, g1, _) = results
        assert torch.allclose(l0, l1, rtol=1e-5, atol=1e-6)
        assert s0.keys() == s1.keys() == {"losses/policy_loss", "losses/value_loss", "losses/bounds_loss", "kl",
                                          "clipfrac"}
        for k in s0:
            assert torch.allclose(s0[k], s1[k], rtol=1e-5, atol=1e-6), k
        for a, c in zip(g0, g1):
            assert torch.allclose(a, c, rtol=1e-4, atol=1e-6)
        # the log-std learns only with the actor on
        assert (std0 is not None and bool(std0.abs().sum() > 0)) == bool(actor_on)


@pytest.mark.parametrize("compiled", [False, True])
def test_bf16_update_is_the_fp32_update_to_bf16_rounding(compiled, request):
    """--update-bf16 (ppo_loss's bf16, eager and torch.compile'd): the loss, its statistics (all FP32) and the FP32
    weights' gradients within bf16's rounding of the FP32 update's, and not equal to them (the products ran in
    bf16). The rollout's log-probabilities are sums of about 100 here (66 actions at log-std -2.9): log-probabilities
    computed in bf16 (steps of 0.5) move the ratio by tens of percent (half of it clipped); these tolerances fail
    then, as they do without autocast or with the networks' outputs left in bf16."""
    if compiled:
        request.getfixturevalue("needs_torch_compile")
    torch.manual_seed(0)
    agent = train_llc.Agent(40, 66, (64, 64), log_std=-2.9)
    b = 256
    obs = torch.randn(b, 40)
    with torch.no_grad():  # this very policy's rollout in FP32: its ratio is 1 in FP32
        dist = agent.dist(obs)
        act, mu_old = dist.sample(), dist.mean
        logp_old = dist.log_prob(act).sum(-1)
    adv, ret_n = torch.randn(b), torch.randn(b)
    teacher_mu, taught = mu_old + 0.05 * torch.randn(b, 66), (torch.rand(b) < 0.5).float()
    results = []
    for bf16 in (False, True):  # the FP32 reference eager (one compilation)
        agent.zero_grad(set_to_none=True)
        loss, stats = train_llc.loss_function(compiled and bf16)(
            agent, obs, act, logp_old, adv, ret_n, mu_old, agent.log_std.clone(), 1.0, 0.2, 10.0, 5.0, None,
            teacher_mu, taught, 1.0, 1.0, bf16=bf16)
        loss.backward()
        assert loss.dtype == torch.float32 and all(v.dtype == torch.float32 for v in stats.values())
        assert all(p.grad.dtype == torch.float32 for p in agent.parameters())
        grads = {name: torch.cat([p.grad.flatten() for p in net.parameters()])
                 for name, net in (("actor", agent.actor), ("critic", agent.critic))}
        results.append((loss.detach(), stats, grads))
    (l0, s0, g0), (l1, s1, g1) = results
    assert torch.isfinite(l1) and all(torch.isfinite(v) for v in s1.values())
    assert abs(float(l1 - l0)) < 1e-2 * abs(float(l0))
    assert abs(float(s1["losses/policy_loss"] - s0["losses/policy_loss"])) < 2e-3  # the ratio: 1 +- 0.2%
    assert float(s1["clipfrac"]) == 0.0 and float(s1["kl"]) < 1e-3
    for k in ("losses/value_loss", "distill_mse"):
        assert abs(float(s1[k] - s0[k])) < 1e-2 * float(s0[k]), k
    for name in g0:
        err = float((g1[name] - g0[name]).norm() / g0[name].norm())
        assert 1e-4 < err < 5e-2, (name, err)  # bf16's rounding: a percent, not FP32's 1e-6


@pytest.mark.parametrize("prime", [0, 1])
def test_a_continued_actor_stays_while_adams_moments_are_primed(two_iterations, tmp_path, prime):
    """--init-from with --actor-prime-iterations 1 (the default): the first iteration moves the critic, not the
    actor (KL 0), the next moves the actor; with 0 the actor moves at once."""
    source = checkpoint.load(two_iterations / "policy.pt", POLICY_FORMAT)
    r = _run(*FAST, "--iterations", "2", "--run-dir", tmp_path / "run", "--keep-policies", "--init-from",
             two_iterations / "policy.pt", "--actor-prime-iterations", prime)
    assert r.returncode == 0, r.stderr
    kept = [checkpoint.load(tmp_path / "run" / "policies" / f"iter_00000{i}.pt", POLICY_FORMAT) for i in (1, 2)]

    def same(a, b):
        return all(torch.equal(a[k], b[k]) for k in a)

    assert same(kept[0]["actor"], source["actor"]) == bool(prime)
    assert not same(kept[1]["actor"], source["actor"])
    assert not same(kept[0]["critic"], source["critic"])
    rows = (tmp_path / "run" / "progress.csv").read_text().splitlines()
    kl = [float(row.split(",")[rows[0].split(",").index("kl")]) for row in rows[1:]]
    assert (kl[0] == 0.0) == bool(prime) and kl[1] > 0.0


def test_a_run_continued_from_a_policy_file_goes_on_with_its_mass_curriculum_when_told(tmp_path):
    """The policy file records where the run's mass curriculum stood (two iterations of 4 x 8 steps: step 16); a
    run --init-from it with the curriculum and no --env.mass-curriculum.first-step shows a note and starts again
    (its own file: step 8); with --env.mass-curriculum.first-step 16 it plays the masses of steps 16-23 (the
    progress.csv column ball_mass, their mean) and records 24. A file without the record (a run without a
    curriculum, as every older one) loads and reads as step 0."""
    from skillmimic.envs.assist import MassCurriculum
    from skillmimic.policy import load_policy
    from skillmimic.policy_info import mass_curriculum_step

    mass = ["--env.mass-curriculum.start", "2.4", "--env.mass-curriculum.steps", "40",
            "--env.mass-curriculum.levels", "4"]
    r = _run(*FAST, *mass, "--iterations", "2", "--run-dir", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    source = tmp_path / "a" / "policy.pt"
    assert checkpoint.load(source, POLICY_FORMAT)["mass_curriculum"] == {"start": 2.4, "steps": 40, "levels": 4,
                                                                         "step": 16}
    assert mass_curriculum_step(source) == 16
    again = _run(*FAST, *mass, "--iterations", "1", "--run-dir", tmp_path / "b", "--init-from", source)
    assert again.returncode == 0, again.stderr
    r4 = (0.6 / 2.4) ** 0.25
    assert (f"note: --init-from {source}: its run stood at step 16 of its mass curriculum (ball {2.4 * r4:.3g} kg); "
            "this run starts the curriculum again from 2.4 kg unless --env.mass-curriculum.first-step 16 is "
            "passed\n") in again.stdout, again.stdout
    assert mass_curriculum_step(tmp_path / "b" / "policy.pt") == 8
    on = _run(*FAST, *mass, "--env.mass-curriculum.first-step", "16", "--iterations", "1", "--run-dir", tmp_path / "c",
              "--init-from", source)
    assert on.returncode == 0, on.stderr
    assert "mass curriculum" not in on.stdout
    assert mass_curriculum_step(tmp_path / "c" / "policy.pt") == 24
    rows = (tmp_path / "c" / "progress.csv").read_text().splitlines()
    played = float(rows[1].split(",")[rows[0].split(",").index("ball_mass")])
    steps = MassCurriculum(start=2.4, steps=40, levels=4)
    assert played == pytest.approx(sum(steps.mass(0.6, k) for k in range(16, 24)) / 8, abs=1e-3)
    assert played < 2.4 * r4  # not the heavy ball again
    plain = tmp_path / "plain.pt"
    checkpoint.save_atomic({k: v for k, v in checkpoint.load(source, POLICY_FORMAT).items() if k != "mass_curriculum"},
                           plain)
    assert "mass_curriculum" not in load_policy(plain).info and mass_curriculum_step(plain) == 0
