"""Distillation (train_llc.py --teachers, skillmimic/distill.py): which teacher labels which skill, the loss it adds,
a run that learns a teacher's actions, and the refusals."""

import csv
import re
import sys

import pytest
import torch

from paths import DATA, ROOT
from scripts import importable_env, run_python

sys.path.insert(0, str(ROOT))
import train_llc  # noqa: E402
from skillmimic import checkpoint, skills  # noqa: E402
from skillmimic import model as M  # noqa: E402
from skillmimic.distill import (RolloutLabels, Teachers, skill_distances, skill_weights, teacher_columns,  # noqa: E402
                               check_options, teacher_share)
from skillmimic.envs.imitation import EnvConfig  # noqa: E402
from skillmimic.envs.observations import OBS_DIM, SKILL_OBS_DIM, skill_obs_dim  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402
from skillmimic.normalizer import EmpiricalNormalization  # noqa: E402
from skillmimic.policy import mlp, policy_file  # noqa: E402

SCALE = EnvConfig().action_scale  # the environment's: a teacher's actions must mean the same PD targets
FAST = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2",
        "--device", "cpu", "--checkpoint-every", "1", "--hidden", "64", "64"]


def _teacher(path, labels, seed, num_obs=SKILL_OBS_DIM, **extra):
    """A rigid-hand policy file whose actor (16 wide, its outputs well within [-1, 1]) teaches `labels`."""
    spec = M.load_spec("rigid")
    torch.manual_seed(seed)
    actor, norm = mlp(num_obs, (16,), spec.num_dofs, out_std=0.3), EmpiricalNormalization(num_obs)
    norm.update(torch.randn(64, num_obs))
    entries = {"skill_labels": labels} if labels is not None else {}
    checkpoint.save_atomic(policy_file(actor, norm, num_obs, spec.num_dofs, (16,), SCALE, 2.0, hand="rigid",
                                       model_sha256=spec.sha256, **entries, **extra), path)
    return actor, norm


def test_each_skill_is_taught_by_the_last_file_that_names_it(tmp_path):
    a_actor, a_norm = _teacher(tmp_path / "a.pt", [5, 31], seed=0)
    b_actor, b_norm = _teacher(tmp_path / "b.pt", [31, 40], seed=1)
    teachers = Teachers((str(tmp_path / "a.pt"), str(tmp_path / "b.pt")), SKILL_OBS_DIM, "rigid",
                        torch.device("cpu"), run_labels=[5, 13, 31], action_scale=SCALE)
    assert teachers.by_label[5] == 0 and teachers.by_label[31] == 1 and teachers.by_label[13] == -1
    assert teachers.describe([5, 13, 31]) == "distilling: a.pt teaches 005; b.pt teaches 031; PPO alone for 013"
    obs = torch.randn(3, SKILL_OBS_DIM)
    mu, taught = teachers.means(obs, torch.tensor([5, 31, 13]))
    with torch.no_grad():
        assert torch.allclose(mu[0], a_actor(a_norm.normalize(obs[:1]))[0])
        assert torch.allclose(mu[1], b_actor(b_norm.normalize(obs[1:2]))[0])
    assert torch.equal(mu[2], torch.zeros_like(mu[2])) and taught.tolist() == [1.0, 1.0, 0.0]


def test_a_student_with_a_past_learns_from_teachers_that_see_less_of_it(tmp_path):
    """A student observing its last 3 control steps (--env.history.steps 3) is taught by a file of no past and one of
    the last step: each teacher acts on its own part of the student's observation (the present, its newest past
    steps, the one-hot)."""
    steps = 3
    none_actor, none_norm = _teacher(tmp_path / "none.pt", [5], seed=0)
    one_actor, one_norm = _teacher(tmp_path / "one.pt", [31], seed=1, num_obs=skill_obs_dim(1), history_steps=1)
    teachers = Teachers((str(tmp_path / "none.pt"), str(tmp_path / "one.pt")), skill_obs_dim(steps), "rigid",
                        torch.device("cpu"), run_labels=[5, 31], action_scale=SCALE)
    obs = torch.randn(2, skill_obs_dim(steps))
    present, past, onehot = obs[:, :OBS_DIM], obs[:, OBS_DIM:-skills.NUM_SLOTS], obs[:, -skills.NUM_SLOTS:]
    newest = past.reshape(2, steps, OBS_DIM)[:, -1]  # oldest first
    mu, taught = teachers.means(obs, torch.tensor([5, 31]))
    with torch.no_grad():
        assert torch.allclose(mu[0], none_actor(none_norm.normalize(torch.cat([present, onehot], 1)[:1]))[0], atol=1e-6)
        seen = torch.cat([present, newest, onehot], 1)[1:]
        assert torch.allclose(mu[1], one_actor(one_norm.normalize(seen))[0], atol=1e-6)
    assert taught.tolist() == [1.0, 1.0]
    assert teacher_columns(steps, steps).tolist() == list(range(skill_obs_dim(steps)))


def test_a_file_that_cannot_teach_this_run_is_refused_in_one_line(tmp_path):
    _teacher(tmp_path / "other.pt", [40], seed=0)
    _teacher(tmp_path / "unlabelled.pt", None, seed=0)
    _teacher(tmp_path / "history.pt", [31], seed=0, num_obs=skill_obs_dim(2), history_steps=2)
    cpu = torch.device("cpu")
    with pytest.raises(UserError, match=r"^--teachers: .*other.pt: teaches 040, none of this run's skills \(031\)$"):
        Teachers((str(tmp_path / "other.pt"),), SKILL_OBS_DIM, "rigid", cpu, run_labels=[31], action_scale=SCALE)
    with pytest.raises(UserError, match=r"unlabelled.pt: records no skill labels"):
        Teachers((str(tmp_path / "unlabelled.pt"),), SKILL_OBS_DIM, "rigid", cpu, run_labels=[31], action_scale=SCALE)
    with pytest.raises(UserError, match=r"^--teachers: .*history.pt: made for num_obs=2476 \(its last 2 control "
                                        r"steps\), this run has num_obs=868 \(its last 0\): a teacher may observe "
                                        r"fewer past steps than the run, not more$"):
        Teachers((str(tmp_path / "history.pt"),), SKILL_OBS_DIM, "rigid", cpu, run_labels=[31], action_scale=SCALE)
    with pytest.raises(UserError, match=r"^--teachers: .*other.pt: its actions are scaled by 1.57\d*, this run's by "
                                        r"1.0$"):
        Teachers((str(tmp_path / "other.pt"),), SKILL_OBS_DIM, "rigid", cpu, run_labels=[40], action_scale=1.0)


def test_the_distillation_loss_counts_the_taught_samples_alone():
    torch.manual_seed(0)
    agent = train_llc.Agent(20, 6, (32, 32), log_std=-1.0)
    b = 16
    obs = torch.randn(b, 20)
    with torch.no_grad():
        mu = agent.actor(obs)
    teacher_mu, taught = mu + 0.1 * torch.randn(b, 6), (torch.arange(b) % 2).float()
    teacher_mu[taught == 0] = 5.0  # far off, and not counted
    args = (agent, obs, mu, torch.zeros(b), torch.randn(b), torch.zeros(b), mu, torch.full((6,), -1.0), 1.0, 0.2,
            10.0, 0.0, None, teacher_mu, taught, 3.0)
    loss, stats = train_llc.ppo_loss(*args, ppo_on=0.0)  # the surrogate left out; means within bounds; no value
    want = (mu - teacher_mu)[taught == 1].square().mean()
    assert torch.allclose(stats["distill_mse"], want) and torch.allclose(loss, 3.0 * want)
    loss_ppo, _ = train_llc.ppo_loss(*args, ppo_on=1.0)
    assert torch.allclose(loss_ppo, 3.0 * want + stats["losses/policy_loss"])


def test_balanced_weights_give_each_taught_skill_the_same_share():
    """--distill-balance: three samples of skill 5 and one of 31 weigh 1/2 each in all; the untaught sample 0; the
    weights add up to the taught count, and the loss is the mean over the skills of each skill's mean distance."""
    taught = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])
    labels = torch.tensor([5, 5, 5, 31, 13])
    w = skill_weights(taught, labels)
    assert torch.allclose(w, torch.tensor([2 / 3, 2 / 3, 2 / 3, 2.0, 0.0]))
    assert torch.isclose(w[:3].sum(), w[3]) and torch.isclose(w.sum(), taught.sum())
    torch.manual_seed(0)
    agent = train_llc.Agent(20, 6, (32, 32), log_std=-1.0)
    obs = torch.randn(5, 20)
    with torch.no_grad():
        mu = agent.actor(obs)
    teacher_mu = mu + torch.randn(5, 6)
    _, stats = train_llc.ppo_loss(agent, obs, mu, torch.zeros(5), torch.randn(5), torch.zeros(5), mu,
                                  torch.full((6,), -1.0), 1.0, 0.2, 10.0, 0.0, None, teacher_mu, w, 1.0, ppo_on=0.0)
    d = (mu - teacher_mu).square().mean(-1)
    assert torch.allclose(stats["distill_mse"], (d[:3].mean() + d[3]) / 2)
    per_skill = skill_distances(mu, teacher_mu, taught, labels, [5, 31, 40])
    assert torch.allclose(per_skill["distill_mse_005"], d[:3].mean())
    assert torch.allclose(per_skill["distill_mse_031"], d[3]) and float(per_skill["distill_mse_040"]) == 0.0
    assert skill_weights(torch.zeros(3), torch.tensor([1, 2, 3])).abs().sum() == 0  # nothing taught: no weight


def test_a_rollout_s_labels_drive_and_weigh_as_asked(tmp_path):
    """RolloutLabels: with a share of 1 the teachers play where they teach (the policy elsewhere); the batch holds
    their means, 1 where taught (or the balanced weights) and the taught skills' columns."""
    _teacher(tmp_path / "a.pt", [5, 31], seed=0)
    cpu = torch.device("cpu")
    teachers = Teachers((str(tmp_path / "a.pt"),), SKILL_OBS_DIM, "rigid", cpu, run_labels=[5, 13, 31],
                        action_scale=SCALE)
    n_act = teachers.policies[0].num_actions
    for balance in (False, True):
        labels = RolloutLabels(teachers, 2, 4, n_act, [5, 13, 31], cpu, share=1.0, balance=balance)
        assert labels.slots == [5, 31] and labels.begin(1) == 1.0
        played = torch.tensor([5, 5, 31, 13])
        action = torch.full((4, n_act), 7.0)
        for step in range(2):
            taken = labels.record(step, torch.randn(4, SKILL_OBS_DIM), played, action)
            assert torch.equal(taken[3], action[3]) and torch.equal(taken[:3], labels.teacher_mu[step][:3])
        mu = torch.zeros(8, n_act)
        teacher_mu, weights, surrogate, stats = labels.batch(mu)
        assert torch.equal(teacher_mu, labels.teacher_mu.reshape(8, n_act)) and sorted(stats) == [
            "distill_mse_005", "distill_mse_031"]
        want = skill_weights(labels.taught.flatten(), labels.label.flatten()) if balance else labels.taught.flatten()
        assert torch.equal(weights, want) and weights[3] == 0 and surrogate is None  # the surrogate everywhere
    assert RolloutLabels(teachers, 1, 4, n_act, [5], cpu).begin(1) == 0.0  # no share: the policy plays


def test_the_surrogate_of_the_skills_asked_alone(tmp_path):
    """--distill-ppo-labels 13 31: the batch weighs the surrogate 1 on those skills' samples and 0 on the others'
    (whose loss is the teachers' alone: their actions get no gradient from it); a label the run's clips lack is
    refused in one line."""
    _teacher(tmp_path / "a.pt", [5, 31], seed=0)
    cpu = torch.device("cpu")
    teachers = Teachers((str(tmp_path / "a.pt"),), SKILL_OBS_DIM, "rigid", cpu, run_labels=[5, 13, 31],
                        action_scale=SCALE)
    n_act = teachers.policies[0].num_actions
    labels = RolloutLabels(teachers, 2, 3, n_act, [5, 13, 31], cpu, ppo_labels=(13, 31))
    for step in range(2):
        labels.record(step, torch.randn(3, SKILL_OBS_DIM), torch.tensor([5, 13, 31]), torch.zeros(3, n_act))
    _, _, surrogate, _ = labels.batch(torch.zeros(6, n_act))
    assert surrogate.tolist() == [0.0, 1.0, 1.0] * 2
    weighed = RolloutLabels(teachers, 2, 3, n_act, [5, 13, 31], cpu, ppo_labels=(13,), ppo_weight=5.0)
    for step in range(2):
        weighed.record(step, torch.randn(3, SKILL_OBS_DIM), torch.tensor([5, 13, 31]), torch.zeros(3, n_act))
    assert weighed.batch(torch.zeros(6, n_act))[2].tolist() == [0.0, 5.0, 0.0] * 2  # --distill-ppo-weight 5
    for weight, line in ((0.0, "--distill-ppo-weight 0.0: must be above 0 (no surrogate: --no-distill-ppo)"),
                         (float("nan"), "--distill-ppo-weight nan: must be above 0 (no surrogate: --no-distill-ppo)")):
        with pytest.raises(UserError, match=f"^{re.escape(line)}$"):
            check_options(("t.pt",), 1.0, True, 0.0, 0, ppo_labels=(1,), ppo_weight=weight)
    with pytest.raises(UserError, match=r"^--distill-ppo-weight needs --distill-ppo-labels \(the skills whose "
                                        r"samples it weighs\)$"):
        check_options(("t.pt",), 1.0, True, 0.0, 0, ppo_weight=2.0)
    with pytest.raises(UserError, match=r"^--distill-ppo-labels 40: not a skill of this run's clips \(005 013 031\)$"):
        RolloutLabels(teachers, 2, 3, n_act, [5, 13, 31], cpu, ppo_labels=(40,))
    torch.manual_seed(0)
    agent = train_llc.Agent(20, 6, (32, 32), log_std=-1.0)
    b = 8
    obs, act, mu_old = torch.randn(b, 20), 0.3 * torch.randn(b, 6), 0.3 * torch.randn(b, 6)
    weight = (torch.arange(b) < 3).float()  # the surrogate on the first three samples
    with torch.no_grad():  # the rollout's own probabilities: a ratio of 1, nothing clipped
        logp_old = agent.dist(obs).log_prob(act).sum(-1)
    adv, grads = torch.randn(b), []
    for on in (weight, 1.0):
        obs_g = obs.clone().requires_grad_(True)
        loss, stats = train_llc.ppo_loss(agent, obs_g, act, logp_old, adv, torch.zeros(b),
                                         mu_old, torch.full((6,), -1.0), 1.0, 0.2, 0.0, 0.0, ppo_on=on)
        loss.backward()
        grads.append(obs_g.grad.abs().sum(-1))
    assert (grads[0][3:] == 0).all() and (grads[0][:3] > 0).all() and (grads[1] > 0).all()
    assert torch.allclose(grads[0][:3], grads[1][:3])  # each sample's share as with the surrogate everywhere
    _teacher(tmp_path / "t.pt", [31], seed=3)  # a run with it, resumed with it
    r = _train(*FAST, "--motion-dir", DATA / "layup", "--iterations", 2, "--run-dir", tmp_path / "run",
               "--teachers", tmp_path / "t.pt", "--distill-ppo-labels", "031", "--distill-ppo-weight", 2,
               "--warm-start-steps", 0)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _train("--resume", tmp_path / "run" / "checkpoint.pt", "--iterations", 3)
    assert r.returncode == 0, r.stderr[-2000:]
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["iteration"] == 3 and tuple(ckpt["args"]["distill_ppo_labels"]) == (31,)
    assert ckpt["args"]["distill_ppo_weight"] == 2.0


def _train(*args):
    return run_python(ROOT / "train_llc.py", *args, env=importable_env())


def test_a_run_learns_its_teacher_s_actions(tmp_path):
    """Pure DAgger on the layup: the distance to the teacher's actions falls iteration after iteration (four Adam
    steps an iteration on its whole rollout, so the first iteration's distill_mse is near the untrained policy's:
    about 0.044 here, 0.014 after twelve)."""
    _teacher(tmp_path / "t.pt", [31], seed=3)
    r = _train(*FAST, "--motion-dir", DATA / "layup", "--iterations", 12, "--run-dir", tmp_path / "run",
               "--teachers", tmp_path / "t.pt", "--no-distill-ppo", "--learning-rate", "1e-3",
               "--warm-start-steps", 0, "--critic-warmup-iterations", 0, "--actor-prime-iterations", 0,
               "--update-epochs", 4, "--num-minibatches", 1, "--num-envs", 16, "--num-steps", 16)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "distilling: t.pt teaches 031" in r.stdout
    with open(tmp_path / "run" / "progress.csv", newline="") as f:
        mse = [float(row["distill_mse"]) for row in csv.DictReader(f)]
    assert len(mse) == 12 and max(mse[-2:]) < 0.5 * mse[0], mse
    r = _train(*FAST, "--motion-dir", DATA / "layup", "--iterations", 2, "--run-dir", tmp_path / "balanced",
               "--teachers", tmp_path / "t.pt", "--no-distill-ppo", "--distill-balance", "--warm-start-steps", 0)
    assert r.returncode == 0, r.stderr[-2000:]
    with open(tmp_path / "balanced" / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(float(row["distill_mse_031"]) > 0 for row in rows)  # the layup's own column


def test_a_missing_teacher_is_refused_before_any_work(tmp_path):
    r = _train(*FAST, "--motion-dir", DATA / "layup", "--iterations", 1, "--run-dir", tmp_path / "run",
               "--teachers", tmp_path / "none.pt")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: --teachers: {tmp_path / 'none.pt'}: no such file (an exported "
                                             "policy, policy.pt)"]
    assert not (tmp_path / "run").exists()
    r = _train(*FAST, "--motion-dir", DATA / "layup", "--iterations", 1, "--run-dir", tmp_path / "run",
               "--distill-coef", "-1")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == ["error: --distill-coef -1.0: must be 0 or more"]
    r = _train(*FAST, "--motion-dir", DATA / "layup", "--iterations", 1, "--run-dir", tmp_path / "run",
               "--distill-balance")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --distill-balance needs --teachers (it weighs the taught skills' samples)"]
    _teacher(tmp_path / "t.pt", [31], seed=3)
    for flags, line in (((), "--distill-ppo-labels needs --teachers and PPO's surrogate (not --no-distill-ppo)"),
                        (("--teachers", tmp_path / "t.pt", "--no-distill-ppo"),
                         "--distill-ppo-labels needs --teachers and PPO's surrogate (not --no-distill-ppo)"),
                        (("--teachers", tmp_path / "t.pt"), "--distill-ppo-labels 64: each a skill label from 0 to 63, "
                                                            "once")):
        r = _train(*FAST, "--motion-dir", DATA / "layup", "--iterations", 1, "--run-dir", tmp_path / "run", *flags,
                   "--distill-ppo-labels", 31 if "once" not in line else 64)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: {line}"], r.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_skill_slots_are_the_labels():
    """Teachers.means reads the skill played from the one-hot's slot: slot i is label i."""
    assert torch.equal(skills.one_hot(torch.tensor([31])).argmax(-1), torch.tensor([31]))


def test_the_compiled_loss_distils_as_the_eager_one(needs_torch_compile):
    torch.manual_seed(0)
    agent = train_llc.Agent(20, 6, (32, 32), log_std=-1.0)
    b = 32
    obs, act, mu_old = torch.randn(b, 20), 0.3 * torch.randn(b, 6), 0.3 * torch.randn(b, 6)
    teacher_mu, taught = 0.3 * torch.randn(b, 6), (torch.arange(b) % 3 > 0).float()
    logp_old, adv, ret_n = torch.randn(b) - 3.0, torch.randn(b), torch.randn(b)
    for ppo_on in (0.0, (torch.arange(b) % 4 == 0).float()):  # no surrogate; a quarter's (--distill-ppo-labels)
        results = []
        for compiled in (False, True):
            agent.zero_grad(set_to_none=True)
            loss, stats = train_llc.loss_function(compiled)(agent, obs, act, logp_old, adv, ret_n, mu_old,
                                                            torch.full((6,), -1.1), 1.0, 0.2, 10.0, 5.0, None,
                                                            teacher_mu, taught, 2.0, ppo_on)
            loss.backward()
            results.append((loss.detach(), stats["distill_mse"], [p.grad.clone() for p in agent.actor.parameters()]))
        (l0, d0, g0), (l1, d1, g1) = results
        assert torch.allclose(l0, l1, rtol=1e-5, atol=1e-6) and torch.allclose(d0, d1, rtol=1e-5, atol=1e-7)
        for a, c in zip(g0, g1):
            assert torch.allclose(a, c, rtol=1e-4, atol=1e-6)


def test_the_teachers_share_of_the_acting_falls_to_zero():
    assert [teacher_share(0.5, i, 4) for i in range(1, 7)] == [0.5, 0.375, 0.25, 0.125, 0.0, 0.0]
    assert teacher_share(0.3, 100, 0) == 0.3  # no schedule: it stays


def test_where_the_teachers_act_they_play_their_means(tmp_path):
    """With the whole share the teachers play every step of the layup: the policy's own sampling noise then changes
    nothing (two runs whose policies differ only in their log-std play the same episodes); with none it does."""
    _teacher(tmp_path / "t.pt", [31], seed=3)
    common = [*FAST, "--motion-dir", DATA / "layup", "--iterations", 2, "--teachers", tmp_path / "t.pt",
              "--no-distill-ppo", "--learning-rate", 0, "--warm-start-steps", 0]
    played = {}
    for share in ("0", "1"):
        for log_std in ("-2.9", "-1.0"):
            d = tmp_path / f"{share}_{log_std}"
            r = _train(*common, "--run-dir", d, "--distill-teacher-share", share, "--log-std", log_std)
            assert r.returncode == 0, r.stderr[-2000:]
            with open(d / "progress.csv", newline="") as f:
                rows = list(csv.DictReader(f))
            played[share, log_std] = [(row["mean_reward"], row["episode_length"]) for row in rows]
            assert ("distill_teacher_share" in rows[0]) == (share == "1")
    assert played["1", "-2.9"] == played["1", "-1.0"]
    assert played["0", "-2.9"] != played["0", "-1.0"]
    bad = _train(*common, "--run-dir", tmp_path / "bad", "--distill-teacher-share", "0.5", "--distill-ppo")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: --distill-teacher-share needs --teachers and --no-distill-ppo (PPO's surrogate needs the policy's own "
        "actions)"]
    bad = _train(*common, "--run-dir", tmp_path / "bad", "--distill-teacher-share", "1.5")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: --distill-teacher-share 1.5: must be within [0, 1]"]
