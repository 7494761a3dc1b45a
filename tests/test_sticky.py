"""Sticky exploration of the high-level controller (train_hlc.py --sticky, skillmimic.sticky): the action
distribution at initialisation, the policy file's round trip, files from before the option, refusals, and the
task environment's last skill that it reads."""

import math

import pytest
import torch

from skillmimic import checkpoint
from skillmimic.envs.observations import SKILL_OBS_DIM
from skillmimic.envs.task_env import TaskEnv, TaskEnvConfig
from skillmimic.errors import UserError
from skillmimic.normalizer import EmpiricalNormalization
from skillmimic.policy import SkillPolicy, TaskPolicy, load_task_policy, task_actor, task_logits, task_policy_file
from skillmimic.sticky import StickyActor, check_sticky, keep_bias, last_one_hot
from skillmimic.tasks import TASKS

NUM_OBS, A, HIDDEN = 7, 4, (16, 16)


def _probs(actor, last: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The actor's action probabilities on random normalised observations, one world per entry of last. (B, A)"""
    obs_n = torch.randn(len(last), NUM_OBS, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return task_logits(actor, obs_n, last).softmax(-1)


@pytest.mark.parametrize("p", [0.0, 0.5, 0.97, 0.99])
def test_at_initialisation_the_previous_skill_is_kept_with_p_and_the_rest_is_uniform(p):
    torch.manual_seed(0)
    actor = task_actor(NUM_OBS, A, HIDDEN, p)
    assert isinstance(actor, StickyActor) == (p > 0)
    last = torch.tensor([-1, 0, 1, 2, 3] * 20)
    probs = _probs(actor, last)
    keep = p + (1 - p) / A  # keep it with probability p, else draw uniformly (scripted_task.py --stick p)
    started = last < 0
    # At an episode's start nothing is kept: near uniform (the last layer's scale is 0.01).
    assert torch.allclose(probs[started], torch.full((int(started.sum()), A), 1 / A), atol=0.02)
    kept = probs[~started].gather(1, last[~started, None])[:, 0]
    assert torch.allclose(kept, torch.full_like(kept, keep), atol=0.02), (kept.min(), kept.max(), keep)
    others = probs[~started].sum(-1) - kept
    assert torch.allclose(others, 1 - kept, atol=1e-6)


def test_keep_bias_gives_p_exactly_on_zero_logits():
    for p in (0.0, 0.3, 0.9, 0.999):
        b = keep_bias(p, A)
        assert math.isclose(math.exp(b) / (math.exp(b) + A - 1), p + (1 - p) / A, rel_tol=1e-9)
    assert last_one_hot(torch.tensor([-1, 2]), 3).tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]


def _write(path, actor, sticky=None, num_obs=NUM_OBS):
    norm = EmpiricalNormalization(num_obs)
    contents = task_policy_file(actor, norm, num_obs, A, HIDDEN, task="throwing", skills=[1, 5, 31, 13],
                                task_config={}, llc_steps=3, llc="llc.pt", llc_sha256="0" * 64, llc_path="llc.pt",
                                hand="full", model_sha256=None, sticky=sticky or 0.0)
    if sticky is None:  # a file from before the option: no "sticky" entry
        del contents["sticky"]
    checkpoint.save_atomic(contents, path)


def test_a_sticky_policy_file_round_trips_and_its_argmax_keeps_the_last_skill(tmp_path):
    torch.manual_seed(1)
    actor = task_actor(NUM_OBS, A, HIDDEN, 0.97)
    with torch.no_grad():
        actor.keep_bias.fill_(3.25)  # as if learned: the file carries the learned bias, not the initial one
    _write(tmp_path / "p.pt", actor, sticky=0.97)
    assert checkpoint.load(tmp_path / "p.pt", "skillmimic-hlc-policy/1")["sticky"] == 0.97
    policy = load_task_policy(tmp_path / "p.pt")
    assert policy.sticky == 0.97 and float(policy.actor.keep_bias.detach()) == 3.25
    obs, last = torch.randn(6, NUM_OBS), torch.tensor([-1, 0, 1, 2, 3, 1])
    assert torch.equal(task_logits(policy.actor, obs, last), task_logits(actor, obs, last))
    assert policy(obs, last)[1:].tolist() == last[1:].tolist()  # its near-zero network: the bias decides
    with pytest.raises(ValueError, match="pass TaskEnv.last_skill"):
        policy(obs)


def test_a_file_from_before_the_option_loads_as_the_plain_actor_and_ignores_the_last_skill(tmp_path):
    torch.manual_seed(2)
    plain = task_actor(NUM_OBS, A, HIDDEN)
    _write(tmp_path / "old.pt", plain, sticky=None)
    assert "sticky" not in checkpoint.load(tmp_path / "old.pt", "skillmimic-hlc-policy/1")
    policy = load_task_policy(tmp_path / "old.pt")
    assert policy.sticky == 0.0 and not isinstance(policy.actor, StickyActor)
    assert set(policy.actor.state_dict()) == set(plain.state_dict())  # the same weights' names: "0.weight", ...
    obs = torch.randn(5, NUM_OBS)
    want = plain(obs).argmax(-1)  # its normaliser is the identity (no statistics yet)
    assert torch.equal(policy(obs), want) and torch.equal(policy(obs, torch.tensor([0, 1, 2, 3, -1])), want)
    assert isinstance(TaskPolicy(NUM_OBS, A, HIDDEN).actor, torch.nn.Sequential)


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), 2, True, "0.5"])
def test_bad_values_are_refused_in_one_line(tmp_path, bad):
    with pytest.raises(UserError) as e:
        check_sticky(bad)
    assert str(e.value).startswith(f"--sticky {bad!r}: must be a probability in [0, 1)") and "\n" not in str(e.value)
    if isinstance(bad, float) and not math.isnan(bad):  # a damaged or hand-edited file: one line naming it
        _write(tmp_path / "bad.pt", task_actor(NUM_OBS, A, HIDDEN), sticky=0.5)
        ckpt = checkpoint.load(tmp_path / "bad.pt", "skillmimic-hlc-policy/1")
        checkpoint.save_atomic({**ckpt, "sticky": bad}, tmp_path / "bad.pt")
        with pytest.raises(checkpoint.CheckpointError, match=r"bad\.pt: sticky .*: must be a probability"):
            load_task_policy(tmp_path / "bad.pt")


def test_the_task_environment_keeps_each_worlds_last_skill(all_motions):
    """TaskEnv.last_skill, a sticky controller's input: -1 from a start, the skill of the last control step after
    it, -1 again on a restart, and in the environment's state (an exactly resumed run reads it)."""
    llc = SkillPolicy(SKILL_OBS_DIM, 156, (32,), math.pi / 2, 2.0)
    cls, cfg_cls = TASKS["heading"]
    env = TaskEnv(TaskEnvConfig(backend="mujoco", max_episode_steps=6), cls, cfg_cls(), llc, all_motions, 3, "cpu")
    env.reset()
    assert env.last_skill.tolist() == [-1, -1, -1]
    env.step(torch.tensor([0, 1, 2]))
    assert env.last_skill.tolist() == [0, 1, 2]
    _, _, terminated, truncated, _ = env.step(torch.tensor([3, 1, 2]))
    assert (terminated | truncated).all() and env.last_skill.tolist() == [-1, -1, -1]  # 6 steps: all restarted
    state = env.state_dict()
    env.step(torch.tensor([0, 0, 0]))
    assert env.last_skill.tolist() == [0, 0, 0]
    env.load_state_dict(state)
    assert env.last_skill.tolist() == [-1, -1, -1]
