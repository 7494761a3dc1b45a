"""Label sampling (EnvConfig.label_sampling, skillmimic/envs/label_sampling.py): the default's draws and random
stream, the probabilities on hand-set counts, the counts over steps, checkpoints, refused flags and a tiny run."""

import csv
import math
import shutil
import sys
from types import SimpleNamespace

import pytest
import torch

from paths import DATA, ROOT
from scripts import importable_env, run_python
from starts import todays_starts
from skillmimic import checkpoint
from skillmimic.cli import parse
from skillmimic.envs.imitation import EnvConfig, ImitationEnv
from skillmimic.envs.label_sampling import LabelSampling, label_probabilities
from skillmimic.envs.switch_starts import SwitchStarts
from skillmimic.errors import UserError
from skillmimic.evaluate import evaluation_config
from skillmimic.motion import MotionSet

sys.path.insert(0, str(ROOT))
import train_llc  # noqa: E402

STATS = ("label_draw_min", "label_draw_max", "label_share_min", "label_share_hardest")


@pytest.fixture(scope="module")
def two_skills():
    return MotionSet([DATA / "layup", DATA / "run"])  # label 31 (1 clip) and 13 (3 clips): indices 1 and 0


def _env(motions, mode="episodes", floor=0.2, n=6, seed=1, **kw):
    return ImitationEnv(EnvConfig(backend="mujoco", label_sampling=LabelSampling(mode, floor), **kw), motions, n,
                        "cpu", seed=seed)


def _ref_actions(env):
    rows = env.motions.rows(env.motion_ids, env.frame_ids + 1)
    return env.motions.table.dof_pos[rows] / env.cfg.action_scale


# --- the default --------------------------------------------------------------------------------------------------
def test_episodes_mode_is_todays_draw_and_random_stream(two_skills):
    env = _env(two_skills, floor=0.7, n=8)  # the floor is read by 'falls' alone
    env.reset()
    assert not env.weigh_labels
    lab, mids, fids, gen = todays_starts(env, two_skills, 8)  # sample_starts as it was, by hand
    assert torch.equal(env.motion_ids, mids) and torch.equal(env.frame_ids, fids)
    assert torch.equal(env.gen.get_state(), gen.get_state())  # nothing else drawn
    assert torch.equal(env.start_label, lab)
    # Steps: nothing counted, nothing logged, the same episodes as an environment built without the option.
    plain = ImitationEnv(EnvConfig(backend="mujoco", max_episode_steps=3), two_skills, 8, "cpu", seed=1)
    env = _env(two_skills, n=8, max_episode_steps=3)
    plain.reset(), env.reset()
    for _ in range(5):
        a, b = plain.step(_ref_actions(plain)), env.step(_ref_actions(env))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not set(STATS) & set(b[4]["stats"])
    assert torch.equal(plain.motion_ids, env.motion_ids) and torch.equal(plain.gen.get_state(), env.gen.get_state())
    assert not env.label_counts.ended.any() and not env.label_counts.steps.any()


def test_train_llc_and_the_evaluation_keep_the_default():
    assert train_llc.Args().env.label_sampling == LabelSampling()
    policy = SimpleNamespace(action_scale=math.pi / 2, action_clip=2.0, hand="full", physics=EnvConfig().physics,
                             ball_starts=False, history_steps=0, num_reference=0, info={})
    assert evaluation_config(policy, 5, "mujoco").label_sampling == LabelSampling()
    parsed = parse(train_llc.Args, ["--env.label-sampling.mode", "falls", "--env.label-sampling.floor", "0.5"]).env
    assert parsed.label_sampling == LabelSampling("falls", 0.5) and parsed.adaptive_starts  # the rest as it was


# --- the probabilities ------------------------------------------------------------------------------------------
def test_probabilities_on_hand_set_counts():
    ended, steps = torch.tensor([10.0, 10.0]), torch.tensor([100.0, 400.0])  # episodes of 10 and 40 steps
    fell = torch.tensor([9.5, 0.5])
    # The prior: one more episode of the mean over all (500 / 20 = 25 steps): mean lengths 125 / 11 and 425 / 11.
    p = label_probabilities("samples", 0.2, ended, fell, steps)
    assert torch.allclose(p, torch.tensor([425.0, 125.0]) / 550.0)  # in proportion to 1 / mean length
    mean_len = (steps + 25.0) / 11.0
    assert torch.allclose(p * mean_len / (p * mean_len).sum(), torch.tensor([0.5, 0.5]))  # equal sample shares
    # falls with floor 1 is samples; floor 0 gives the samples in proportion to the fall rates (10/11 and 1/11).
    assert torch.equal(label_probabilities("falls", 1.0, ended, fell, steps), p)
    q = label_probabilities("falls", 0.0, ended, fell, steps)
    assert torch.allclose(q, torch.tensor([10 / 125, 1 / 425]) / (10 / 125 + 1 / 425))
    assert torch.allclose(q * mean_len / (q * mean_len).sum(), torch.tensor([10 / 11, 1 / 11]))
    # floor 0.5: each label's share of the samples is 0.25 + 0.5 * its share of the fall rates
    h = label_probabilities("falls", 0.5, ended, fell, steps)
    assert torch.allclose(h * mean_len / (h * mean_len).sum(), 0.25 + 0.5 * torch.tensor([10 / 11, 1 / 11]))
    assert torch.equal(label_probabilities("episodes", 0.2, ended, fell, steps), torch.tensor([0.5, 0.5]))
    # No episode yet, or none of one label: the labels count as equally long (and, in falls, as falling half the
    # time): uniform.
    zero = torch.zeros(3)
    for mode in ("samples", "falls"):
        assert torch.allclose(label_probabilities(mode, 0.2, zero, zero, zero), torch.full((3,), 1 / 3))
    one = label_probabilities("samples", 0.2, torch.tensor([10.0, 0.0]), zero[:2], torch.tensor([100.0, 0.0]))
    assert torch.allclose(one, torch.tensor([0.5, 0.5]))
    # weights: each label's share of the samples in proportion to its weight (3 and 1 here).
    w = label_probabilities("weights", 0.2, ended, fell, steps, torch.tensor([3.0, 1.0]))
    assert torch.allclose(w * mean_len / (w * mean_len).sum(), torch.tensor([0.75, 0.25]))
    assert torch.allclose(label_probabilities("weights", 0.2, ended, fell, steps, torch.ones(2)), p)  # samples'


def test_weights_mode_gives_the_named_labels_their_shares(two_skills):
    """--env.label-sampling.mode weights --env.label-sampling.weights 013=3: the dribble (index 0) gets three
    quarters of the samples against the layup's (unnamed: weight 1), whatever their episodes' lengths."""
    cfg = LabelSampling("weights", weights=("013=3",))
    assert cfg.parsed_weights() == {13: 3.0} and cfg.label_weights([13, 31]).tolist() == [3.0, 1.0]
    env = ImitationEnv(EnvConfig(backend="mujoco", label_sampling=cfg), two_skills, 1, "cpu", seed=1)
    assert env.weigh_labels
    c = env.label_counts
    c.ended.copy_(torch.tensor([100.0, 100.0]))
    c.steps.copy_(torch.tensor([1000.0, 4000.0]))  # the dribble's episodes 10 steps long, the layup's 40
    p = c.probabilities(cfg)
    mean_len = (c.steps + 25.0) / 101.0
    assert torch.allclose(p * mean_len / (p * mean_len).sum(), torch.tensor([0.75, 0.25]))
    lab = env.sample_labels(20000)
    assert abs(float((lab == 0).float().mean()) - float(p[0])) < 0.015
    parsed = parse(train_llc.Args, ["--env.label-sampling.mode", "weights", "--env.label-sampling.weights", "013=6",
                                    "031=0.5"]).env.label_sampling
    assert parsed == LabelSampling("weights", weights=("013=6", "031=0.5"))
    for weights, message in ((("001=2",), r"^--env.label-sampling.weights: 001 not among this run's skills "
                                          r"\(013, 031\)$"),
                             (("013=0", "031=0"), r"^--env.label-sampling.weights: every label weighs 0$")):
        with pytest.raises(UserError, match=message):
            ImitationEnv(EnvConfig(backend="mujoco", label_sampling=LabelSampling("weights", weights=weights)),
                         two_skills, 1, "cpu")


def test_samples_mode_draws_the_label_of_short_episodes_more(two_skills):
    env = _env(two_skills, "samples", n=1)
    c = env.label_counts
    c.ended.copy_(torch.tensor([100.0, 100.0]))
    c.steps.copy_(torch.tensor([1000.0, 4000.0]))  # label index 0 (run) 10 steps an episode, 1 (layup) 40
    mids, fids = env.sample_starts(20000)
    share = float((two_skills.labels[mids] == 13).float().mean())
    assert 0.78 < share < 0.815, share  # 39.85 / (39.85 + 10.15) = 0.797 with the prior
    assert (fids >= 0).all() and (fids < two_skills.lengths[mids] - 1).all()
    # falls: the same lengths, the long label falling every time and the short one never
    falls = _env(two_skills, "falls", floor=0.5, n=1)
    falls.label_counts.ended.copy_(c.ended), falls.label_counts.steps.copy_(c.steps)
    falls.label_counts.fell.copy_(torch.tensor([0.0, 100.0]))
    p = falls.label_counts.probabilities(falls.cfg.label_sampling)
    assert float(p[1]) > 2 * float(c.probabilities(env.cfg.label_sampling)[1])  # 0.43 against samples' 0.20
    lab = falls.sample_labels(20000)
    assert abs(float((lab == 1).float().mean()) - float(p[1])) < 0.015
    # With adaptive starts the label is drawn the same way, then a start row within it.
    adaptive = _env(two_skills, "samples", n=1, adaptive_starts=True)
    adaptive.label_counts.ended.copy_(c.ended), adaptive.label_counts.steps.copy_(c.steps)
    mids, _ = adaptive.sample_starts(20000)
    assert 0.78 < float((two_skills.labels[mids] == 13).float().mean()) < 0.815


# --- the counts -----------------------------------------------------------------------------------------------
def test_counts_update_and_decay_over_steps(two_skills):
    # Short episodes, a fast decay, half the worlds following the reference and half limp: both kinds of end.
    env = _env(two_skills, "falls", n=6, max_episode_steps=4, fall_distance=0.1, adaptive_decay=0.8)
    env.reset()
    ended, fell, steps = torch.zeros(2), torch.zeros(2), torch.zeros(2)
    seen_fell = seen_timeout = 0
    for _ in range(10):
        label = env.start_label.clone()
        actions = _ref_actions(env)
        actions[3:] = 0.0
        _, _, terminated, truncated, info = env.step(actions)
        end = terminated | truncated
        ended = 0.8 * ended + torch.zeros(2).index_add_(0, label, end.float())
        fell = 0.8 * fell + torch.zeros(2).index_add_(0, label, terminated.float())
        steps = 0.8 * steps + torch.zeros(2).index_add_(0, label, (info["episode_steps"] * end).float())
        c = env.label_counts
        assert torch.allclose(c.ended, ended) and torch.allclose(c.fell, fell) and torch.allclose(c.steps, steps)
        seen_fell += int(terminated.sum())
        seen_timeout += int(truncated.sum())
        p = label_probabilities("falls", 0.2, ended, fell, steps)
        s = info["stats"]
        assert torch.allclose(s["label_draw_min"], p.min()) and torch.allclose(s["label_draw_max"], p.max())
        assert 0.0 <= float(s["label_share_min"]) <= 0.5 and 0.0 <= float(s["label_share_hardest"]) <= 1.0
    assert seen_fell and seen_timeout, (seen_fell, seen_timeout)


def test_switch_episodes_are_left_out_of_the_counts(two_skills):
    env = _env(two_skills, "samples", n=4, max_episode_steps=2, switch_starts=SwitchStarts(1.0))
    env.reset()
    for _ in range(4):
        _, _, terminated, truncated, info = env.step(_ref_actions(env))
    assert env.switched.all() and not env.label_counts.ended.any() and not env.label_counts.steps.any()
    assert float(info["stats"]["label_draw_min"]) == 0.5  # nothing counted: uniform


def test_given_starts_draw_nothing_and_one_label_is_left_alone(two_skills, layup_motions):
    env = _env(two_skills, "samples", n=3)
    before = env.gen.get_state()
    env.reset_envs(torch.arange(3), torch.tensor([0, 1, 2]), torch.tensor([5, 6, 7]))  # the evaluation's way
    assert torch.equal(env.gen.get_state(), before)
    assert torch.equal(env.start_label, env.motion_label[torch.tensor([0, 1, 2])])
    one = ImitationEnv(EnvConfig(backend="mujoco", label_sampling=LabelSampling("falls")), layup_motions, 2, "cpu")
    assert not one.weigh_labels
    one.reset()
    assert not set(STATS) & set(one.step(_ref_actions(one))[4]["stats"])


# --- checkpoints ------------------------------------------------------------------------------------------------
def test_checkpoint_round_trip_keeps_the_counts(two_skills):
    kw = dict(mode="falls", n=6, max_episode_steps=3, fall_distance=0.05)
    a = _env(two_skills, seed=3, **kw)
    a.reset()
    for _ in range(4):
        a.step(torch.zeros(a.num_envs, a.num_actions))
    assert a.label_counts.ended.any()
    state = a.state_dict()
    b = _env(two_skills, seed=9, **kw)
    b.reset()
    b.load_state_dict(state)
    assert torch.equal(a.start_label, b.start_label)
    for name in ("ended", "fell", "steps"):
        assert torch.equal(getattr(a.label_counts, name), getattr(b.label_counts, name))
    for _ in range(4):
        ra = a.step(torch.zeros(a.num_envs, a.num_actions))
        rb = b.step(torch.zeros(b.num_envs, b.num_actions))
        assert torch.equal(ra[0], rb[0]) and torch.equal(ra[1], rb[1])
        assert all(torch.equal(ra[4]["stats"][k], rb[4]["stats"][k]) for k in STATS)
    assert torch.equal(a.motion_ids, b.motion_ids) and torch.equal(a.label_counts.steps, b.label_counts.steps)
    # A checkpoint written before label sampling loads, its counts starting empty.
    old = {k: v for k, v in state.items() if k not in ("start_label", "label_counts")}
    c = _env(two_skills, seed=9, **kw)
    c.reset()
    c.load_state_dict(old)
    assert not c.label_counts.ended.any() and torch.equal(c.motion_ids, state["motion_ids"])


# --- a user's mistakes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampling, message", [
    (LabelSampling(floor=1.5), r"--env.label-sampling.floor 1.5: must be within \[0, 1\]"),
    (LabelSampling(floor=-0.1), r"--env.label-sampling.floor -0.1: must be within \[0, 1\]"),
    (LabelSampling(floor=float("nan")), r"--env.label-sampling.floor nan: must be within \[0, 1\]"),
    (LabelSampling(mode="steps"), r"--env.label-sampling.mode 'steps': must be one of episodes, samples, falls"),
    (LabelSampling(weights=("013=2",)), r"^--env.label-sampling.weights: given with mode 'episodes'; pass "
                                        r"--env.label-sampling.mode weights$"),
    (LabelSampling("weights", weights=("13",)), r"^--env.label-sampling.weights '13': must be LABEL=WEIGHT"),
    (LabelSampling("weights", weights=("013=-1",)), r"^--env.label-sampling.weights '013=-1': must be LABEL=WEIGHT"),
    (LabelSampling("weights", weights=("013=nan",)), r"--env.label-sampling.weights '013=nan': must be"),
    (LabelSampling("weights", weights=("x=1",)), r"--env.label-sampling.weights 'x=1': must be"),
    (LabelSampling("weights", weights=("013=1", "13=2")), r"^--env.label-sampling.weights: label 013 named twice$"),
])
def test_bad_label_sampling_is_refused_in_one_line(sampling, message):
    with pytest.raises(UserError, match=message) as e:
        EnvConfig(label_sampling=sampling)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("argv, message", [
    (["--env.label-sampling.floor", "2"], "--env.label-sampling.floor 2.0: must be within"),
    (["--env.label-sampling.mode", "steps"], "--env.label-sampling.mode"),
])
def test_bad_label_sampling_flags_are_refused_in_one_line(argv, message):
    with pytest.raises(UserError, match=message) as e:
        parse(train_llc.Args, argv)
    assert "\n" not in str(e.value)


# --- a tiny run -------------------------------------------------------------------------------------------------
def test_a_tiny_training_run_logs_the_label_shares_and_resumes_exactly(tmp_path):
    both = tmp_path / "two"
    for name in ("layup", "run"):
        shutil.copytree(DATA / name, both / name)
    env = importable_env()

    def run(*args):
        return run_python(ROOT / "train_llc.py", "--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2",
                          "--update-epochs", "1", "--device", "cpu", "--hidden", "64", "64", "--warm-start-steps", "0",
                          "--motion-dir", both, "--env.label-sampling.mode", "falls", "--env.max-episode-steps", "6",
                          *args, env=env)

    a, b = tmp_path / "a", tmp_path / "b"
    for r in (run("--iterations", "3", "--run-dir", str(a)), run("--iterations", "2", "--run-dir", str(b)),
              run("--iterations", "3", "--resume", str(b / "checkpoint.pt"))):
        assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((a / "progress.csv").open()))
    assert len(rows) == 3
    for row in rows:
        lo, hi, share = float(row["label_draw_min"]), float(row["label_draw_max"]), float(row["label_share_min"])
        assert 0.0 < lo <= 0.5 <= hi < 1.0 and 0.0 <= share <= 0.5 and 0.0 <= float(row["label_share_hardest"]) <= 1
    resumed = list(csv.DictReader((b / "progress.csv").open()))  # samples/s differ, the label columns do not
    assert [[r[k] for k in STATS] for r in resumed] == [[r[k] for k in STATS] for r in rows]
    ca = checkpoint.load(a / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    cb = checkpoint.load(b / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    assert ca["args"]["env"]["label_sampling"] == {"mode": "falls", "floor": 0.2, "weights": ()}  # kept on resume
    for k, v in ca["agent"].items():
        assert torch.equal(v, cb["agent"][k]), k
    ea, eb = ca["ranks"][0]["env"], cb["ranks"][0]["env"]
    assert float(ea["label_counts"]["ended"].sum()) > 0 and torch.equal(ea["start_label"], eb["start_label"])
    for k in ("ended", "fell", "steps"):
        assert torch.equal(ea["label_counts"][k], eb["label_counts"][k]), k
