"""The skill-policy training recipe: warm start, adaptive starts, play past the clip, --init-from (and the history a
policy carries across it), and exact resume with all of them (CPU, a few environments)."""

import shutil
import sys

import pytest
import torch

from paths import DATA, ROOT
from scripts import run_python

sys.path.insert(0, str(ROOT))
import train_llc  # noqa: E402
from skillmimic import checkpoint, recipe, skills  # noqa: E402
from skillmimic.envs.imitation import EnvConfig, ImitationEnv  # noqa: E402
from skillmimic.envs.observations import SKILL_OBS_DIM  # noqa: E402
from skillmimic.llc_link import file_sha256  # noqa: E402

FAST = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2",
        "--device", "cpu", "--checkpoint-every", "1", "--hidden", "64", "64", "--warm-start-steps", "20"]
RECIPE = ["--learn-std", "--log-std", "-1.6", "--desired-kl", "0.02",
          "--critic-warmup-iterations", "1", "--env.adaptive-starts", "--env.steps-after-clip", "20"]


BALL_NOISE = ["--env.ball-noise.share", "0.5", "--env.ball-noise.pos", "0.05", "--env.ball-noise.vel", "0.8"]


def _run(*args):
    return run_python("train_llc.py", *args)


def _env(motions, n=4, **kw):
    return ImitationEnv(EnvConfig(backend="mujoco", **kw), motions, n, "cpu", seed=1)


def _body_error_from_clip_start(env, act, steps=12):
    """Mean body-position error to the reference over the first steps from the clip's first frame."""
    ids = torch.arange(env.num_envs)
    zero = torch.zeros(env.num_envs, dtype=torch.long)
    env.reset_envs(ids, zero, zero)
    env.sim.forward()
    obs, err = env.observe(), []
    for _ in range(steps):
        obs, _, _, _, info = env.step(act(obs))
        err.append(float(info["drift"].mean()))
    return sum(err) / len(err)


def test_warm_start_fits_the_data_and_its_first_actions_track_the_clip(layup_motions):
    env = _env(layup_motions, n=8)
    args = train_llc.Args(warm_start_batch=64, hidden=(64, 64))
    torch.manual_seed(0)
    agent = train_llc.Agent(env.num_obs, env.num_actions, args.hidden, args.log_std)
    obs, target = env.demonstration()
    assert obs.shape == (160, env.num_obs) and target.shape == (160, env.num_actions)  # every frame but the last
    with torch.no_grad():
        before = float((agent.actor(agent.obs_norm.normalize(obs)) - target).square().mean())
    after = recipe.warm_start(agent.actor, agent.obs_norm, obs, target, 300, args.warm_start_lr, args.warm_start_batch,
                              args.seed)
    assert after < before / 20, (before, after)
    with torch.no_grad():
        warm = _body_error_from_clip_start(env, lambda o: agent.actor(agent.obs_norm.normalize(o)))
        torch.manual_seed(0)
        cold = train_llc.Agent(env.num_obs, env.num_actions, args.hidden, args.log_std)
        untrained = _body_error_from_clip_start(env, lambda o: cold.actor(cold.obs_norm.normalize(o)))
    assert warm < 0.1 < untrained, (warm, untrained)  # metres, mean over bodies and steps


def test_adaptive_starts_favour_failing_segments_and_keep_the_floor(layup_motions):
    env = _env(layup_motions, adaptive_starts=True, adaptive_floor=0.2, adaptive_segment=10)
    n_seg = env.seg_started.numel()
    assert n_seg == 17  # 161 frames in segments of 10
    env.seg_started.fill_(100.0)
    env.seg_fell.zero_()
    env.seg_fell[3] = 100.0  # episodes started in frames 30-39 always fall, the others never
    p = env.start_probabilities()[0]  # the one label's start rows: frames 0..159
    assert torch.allclose(p.sum(), torch.tensor(1.0))
    floor = 0.2 / 160
    assert (p >= floor - 1e-7).all()  # every frame keeps its share of the uniform floor
    # 0.2 * 10/160 uniform + 0.8 * 10 * 100.5/101 / (10 * 100.5/101 + 150 * 0.5/101): the prior of 0.5 falls in
    # 101 starts keeps the other segments a little of the weighted share too.
    assert abs(float(p[30:40].sum()) - 0.757) < 0.002
    motion_ids, frame_ids = env.sample_starts(4000)
    share = float(((frame_ids >= 30) & (frame_ids < 40)).float().mean())
    assert 0.72 < share < 0.79, share
    assert int(frame_ids.max()) <= 159 and int(motion_ids.max()) == 0
    # Episodes that end add to the statistics of the segment they started in.
    env.seg_started.zero_()
    env.seg_fell.zero_()
    env.reset_envs(torch.arange(4), torch.zeros(4, dtype=torch.long), torch.tensor([5, 15, 15, 25]))
    env._count_starts(torch.tensor([True, False, True, False]), torch.tensor([False, True, False, False]))
    assert env.seg_started[:3].tolist() == [1.0, 2.0, 0.0] and env.seg_fell[:3].tolist() == [1.0, 1.0, 0.0]


def test_play_past_the_clip_holds_its_last_frame_and_scores_the_body(layup_motions):
    env = _env(layup_motions, n=2, steps_after_clip=5, auto_reset=False)
    ids = torch.arange(2)
    env.reset_envs(ids, torch.zeros(2, dtype=torch.long), torch.tensor([158, 158]))
    hold = env.motions.table.dof_pos[-1] / env.cfg.action_scale
    truncated_at = None
    for k in range(8):
        _, reward, terminated, truncated, info = env.step(hold.expand(2, -1))
        assert not terminated.any()
        t = info["terms"]
        if env.frame_ids[0] > 160:  # past the last frame (160): the body terms alone
            assert torch.allclose(reward, t["p"] * t["r"] * t["jv"])
        if truncated.all() and truncated_at is None:
            truncated_at = k
    assert truncated_at == 1 + 5  # frame 160 reached after 2 steps, then 5 more


def test_init_from_a_policy_and_refuse_one_of_another_model(tmp_path):
    r = _run(*FAST, "--iterations", "1", "--run-dir", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    a = checkpoint.load(tmp_path / "a" / "policy.pt", "skillmimic-llc-policy/1")
    for k in ("critic", "value_norm"):  # a policy of before the critic was carried: a new critic warms up
        a.pop(k)
    checkpoint.save_atomic(a, tmp_path / "actor_only.pt")
    r = _run(*FAST, "--iterations", "1", "--run-dir", str(tmp_path / "b"), "--init-from",
             str(tmp_path / "actor_only.pt"), "--critic-warmup-iterations", "1")
    assert r.returncode == 0 and "actor; new critic" in r.stdout, r.stderr
    b = checkpoint.load(tmp_path / "b" / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    for k, v in a["actor"].items():  # the critic alone learned in b's one iteration
        assert torch.equal(v, b["agent"][f"actor.{k}"]), k
    # b's policy carries the whole history: a's samples and iteration with its own, and the file it came from.
    history = checkpoint.load(tmp_path / "b" / "policy.pt", "skillmimic-llc-policy/1")["history"]
    assert a["history"] == {"samples": 32, "iterations": 1, "from": [], "complete": True}
    assert history["samples"] == 64 and history["iterations"] == 2 and history["complete"]
    assert history["from"] == [{"file": str(tmp_path / "actor_only.pt"), "sha256": file_sha256(tmp_path /
                                "actor_only.pt"), "iteration": 1, "samples": 32}]
    # The evaluation prints it, and of the shipped policy, written before histories, no more than its file holds.
    (tmp_path / "both").mkdir()
    shutil.copy(tmp_path / "b" / "policy.pt", tmp_path / "both" / "b.pt")
    shutil.copy(ROOT / "skillmimic" / "assets" / "llc_policy.pt", tmp_path / "both" / "shipped.pt")
    r = run_python("-m", "skillmimic.evaluate", "--checkpoint", tmp_path / "both", "--motion-dir",
                   "data/BallPlay-M/layup", "--episodes", "1", "--horizon", "1", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert (f"b.pt: iteration 1, 32 samples in its run; 64 samples and 2 iterations in all, started from "
            f"{tmp_path / 'actor_only.pt'}\n") in r.stdout, r.stdout
    assert ("shipped.pt: iteration 332, 87,031,808 samples (of the run that wrote it; the file records no policy that "
            "run started from)\n") in r.stdout, r.stdout
    a["num_actions"] = 7
    checkpoint.save_atomic(a, tmp_path / "other.pt")
    r = _run(*FAST, "--iterations", "1", "--run-dir", str(tmp_path / "c"), "--init-from", str(tmp_path / "other.pt"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "other.pt: trained on the rigid hand (7 actions" in r.stderr.strip().splitlines()[-1]


def test_init_from_carries_the_critic_and_both_normalisers_exactly(tmp_path):
    r = _run(*FAST, "--iterations", "2", "--run-dir", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    saved = checkpoint.load(tmp_path / "a" / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    env_cfg = EnvConfig(backend="mujoco", hand="rigid")
    from skillmimic.motion import MotionSet
    env = ImitationEnv(env_cfg, MotionSet(ROOT / "data/BallPlay-M/layup", hand="rigid"), 2, "cpu")
    trained = train_llc.Agent(env.num_obs, env.num_actions, (64, 64), -2.9)
    trained.load_state_dict(saved["agent"])
    fresh = train_llc.Agent(env.num_obs, env.num_actions, (64, 64), -2.9)
    carried = recipe.init_from(str(tmp_path / "a" / "policy.pt"), fresh.actor, fresh.obs_norm, (64, 64), env.num_obs,
                               "rigid", torch.device("cpu"), critic=fresh.critic, value_norm=fresh.value_norm)
    assert set(carried.critic_state) == {"critic", "value_norm"}
    obs = env.reset()
    with torch.no_grad():
        for agent in (trained, fresh):
            agent.eval()
        v_trained = trained.value_norm.denormalize(trained.value(trained.obs_norm.normalize(obs)))
        v_fresh = fresh.value_norm.denormalize(fresh.value(fresh.obs_norm.normalize(obs)))
    assert torch.equal(v_trained, v_fresh)  # the critic's values, through both normalisers, to the bit
    assert torch.equal(trained.actor(trained.obs_norm.normalize(obs)), fresh.actor(fresh.obs_norm.normalize(obs)))
    r = _run(*FAST, "--iterations", "1", "--run-dir", str(tmp_path / "b"), "--init-from",
             str(tmp_path / "a" / "policy.pt"))
    assert r.returncode == 0 and "actor and critic" in r.stdout, r.stderr


def test_the_learning_rate_warms_up_once_the_actor_moves_and_a_negative_count_is_refused(tmp_path):
    assert [recipe.warmup_lr(1e-4, 4, k) for k in (-1, 0, 1, 2, 4, 9)] == [2.5e-5, 2.5e-5, 2.5e-5, 5e-5, 1e-4, 1e-4]
    assert recipe.warmup_lr(1e-4, 0, 1) == 1e-4  # off
    # critic alone (1), actor primed (2), then the actor moves: 1/2 of the rate at iteration 3, all of it at 4
    r = _run(*FAST, "--iterations", "5", "--run-dir", str(tmp_path / "a"), "--learning-rate", "1e-4",
             "--critic-warmup-iterations", "1", "--lr-warmup-iterations", "2")
    assert r.returncode == 0, r.stderr
    import csv
    with open(tmp_path / "a" / "progress.csv") as f:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(f)]
    assert rates == [5e-5, 5e-5, 5e-5, 1e-4, 1e-4]
    for flag in ("--lr-warmup-iterations", "--critic-warmup-iterations", "--actor-prime-iterations"):
        r = _run(*FAST, "--run-dir", str(tmp_path / "b"), flag, "-1")
        assert r.returncode == 2 and r.stderr.strip() == f"error: {flag} -1: must be at least 0", r.stderr
        assert not (tmp_path / "b").exists()
    r = _run(*FAST, "--run-dir", str(tmp_path / "b"), "--lr-warmup-iterations", "5", "--desired-kl", "0.01")
    assert r.returncode == 2 and r.stderr.strip() == ("error: --lr-warmup-iterations needs a fixed learning rate: "
                                                      "--desired-kl sets the step size itself"), r.stderr


@pytest.mark.parametrize("recipe", [RECIPE, RECIPE + BALL_NOISE], ids=["recipe", "ball-noise"])
def test_resume_with_the_recipe_is_exact(tmp_path, recipe):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(*FAST, *recipe, "--iterations", "3", "--run-dir", str(a)).returncode == 0
    r = _run(*FAST, *recipe, "--iterations", "2", "--run-dir", str(b))
    assert r.returncode == 0 and "warm start: 20 steps" in r.stdout, r.stderr
    r = _run(*FAST, "--iterations", "3", "--run-dir", str(b), "--resume", str(b / "checkpoint.pt"))
    assert r.returncode == 0, r.stderr
    ca = checkpoint.load(a / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    cb = checkpoint.load(b / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    for k, v in ca["agent"].items():
        assert torch.equal(v, cb["agent"][k]), k
    assert ca["optimizer"]["param_groups"][0]["lr"] == cb["optimizer"]["param_groups"][0]["lr"]
    assert not torch.equal(ca["agent"]["log_std"], torch.full_like(ca["agent"]["log_std"], -1.6))  # it learned
    for k in ("seg_started", "seg_fell", "start_seg"):
        assert torch.equal(ca["ranks"][0]["env"][k], cb["ranks"][0]["env"][k]), k


def test_ball_distance_ends_an_episode_whose_ball_is_lost_on_the_clip_only(layup_motions):
    env = _env(layup_motions, n=2, ball_distance=0.5, steps_after_clip=5, auto_reset=False)
    ids = torch.arange(2)
    env.reset_envs(ids, torch.zeros(2, dtype=torch.long), torch.tensor([10, 160]))  # on the clip; its last frame
    with torch.no_grad():
        env.sim.qpos[:, env.spec.ball_qpos.start] += 2.0  # both balls 2 m off
    env.sim.forward()
    hold = env.motions.table.dof_pos[env.motions.rows(env.motion_ids, env.frame_ids + 1)] / env.cfg.action_scale
    _, _, terminated, _, _ = env.step(hold)
    assert terminated[0]  # frame 11 of 161: the ball is scored, and lost
    assert not terminated[1]  # world 1 is past frame 160, where the ball is not scored
    keep = _env(layup_motions, n=1, auto_reset=False)  # the default: never on the ball
    keep.reset_envs(torch.arange(1), torch.zeros(1, dtype=torch.long), torch.tensor([10]))
    with torch.no_grad():
        keep.sim.qpos[:, keep.spec.ball_qpos.start] += 2.0
    keep.sim.forward()
    _, _, terminated, _, _ = keep.step(hold[:1])
    assert not terminated[0]


def test_trace_episode_reports_each_step_from_the_clip_start(tmp_path, capsys):
    from skillmimic import model as M
    from skillmimic.policy import SkillPolicy, save_policy

    from skillmimic import trace_episode
    from skillmimic.errors import UserError

    spec = M.load_spec("rigid")
    path = tmp_path / "p.pt"
    save_policy(SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (16,), 1.5, 2.0, hand="rigid",
                            model_sha256=spec.sha256), path)
    lines = trace_episode.trace(trace_episode.Args(checkpoint=str(path), steps=3, every=1))
    assert [x["step"] for x in lines] == [1, 2, 3] or lines[-1]["fell"]
    first = lines[0]
    assert first["ball_error_m"] < 0.15 and first["drift_m"] < 0.15  # one step from the reference state
    assert first["ref_hand_on_ball"] and abs(first["ref_pelvis_z"] - first["pelvis_z"]) < 0.05
    assert [x["frame"] for x in lines] == [x["step"] for x in lines]  # from the clip's frame 0, one a step
    assert "step   1  frame   1  reward" in capsys.readouterr().out
    # --teacher: the distance of the action means from another policy's, step by step (0 from itself)
    lines = trace_episode.trace(trace_episode.Args(checkpoint=str(path), steps=2, every=1, teacher=str(path)))
    assert [x["teacher_mse"] for x in lines] == [0.0, 0.0] and "from the teacher 0.00000" in capsys.readouterr().out
    torch.manual_seed(3)
    other = SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (16,), 1.5, 2.0, hand="rigid", model_sha256=spec.sha256)
    save_policy(other, tmp_path / "other.pt")
    lines = trace_episode.trace(trace_episode.Args(checkpoint=str(path), steps=2, every=1,
                                                   teacher=str(tmp_path / "other.pt")))
    assert all(x["teacher_mse"] > 0 for x in lines)
    save_policy(SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (16,), 1.0, 2.0, hand="rigid", model_sha256=spec.sha256),
                tmp_path / "scaled.pt")
    with pytest.raises(UserError, match="--teacher: .*scaled.pt: its actions are scaled by 1.0, .*p.pt's by 1.5"):
        trace_episode.trace(trace_episode.Args(checkpoint=str(path), teacher=str(tmp_path / "scaled.pt")))


def test_ball_noise_is_training_only(tmp_path):
    """A run with the ball noise records it in its checkpoint's arguments (a resumed run keeps it) but not in its
    policy file; the evaluation of that policy builds an environment with it off, whose starts are the data's."""
    from skillmimic import model as M
    from skillmimic.envs.ball_noise import BallNoise
    from skillmimic.evaluate import evaluation_config
    from skillmimic.motion import MotionSet
    from skillmimic.policy import load_policy

    r = _run(*FAST, *BALL_NOISE, "--iterations", "1", "--run-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    saved = checkpoint.load(tmp_path / "checkpoint.pt", train_llc.TRAIN_FORMAT)["args"]["env"]["ball_noise"]
    assert saved == {"share": 0.5, "pos": 0.05, "vel": 0.8}
    policy = load_policy(tmp_path / "policy.pt", num_obs=SKILL_OBS_DIM)
    assert "ball_noise" not in policy.info and policy.physics == M.Physics(palm=True)
    cfg = evaluation_config(policy, 5, "mujoco")
    assert cfg.ball_noise == BallNoise() and cfg.ball_noise.share == 0.0
    motions = MotionSet(DATA / "layup", hand=policy.hand)
    env = ImitationEnv(cfg, motions, 2, "cpu")
    env.reset()  # even a start it draws itself
    qpos, qvel = motions.state(env.motion_ids, env.frame_ids)
    assert torch.equal(env.sim.qpos, qpos) and torch.equal(env.sim.qvel, qvel)


def _one_skill_file_parts(label: int, seed: int = 0):
    """An actor, critic and observation normaliser as a run on the single skill `label` leaves them: every skill
    input constant (the label's column always 1, the others always 0), the state inputs varied."""
    torch.manual_seed(seed)
    agent = train_llc.Agent(SKILL_OBS_DIM, 5, (16, 16), -2.9)
    states = torch.randn(256, SKILL_OBS_DIM - skills.NUM_SLOTS)
    agent.obs_norm.update(torch.cat((states, skills.one_hot(torch.full((256,), label))), -1))
    return agent


def _obs(label: int, states: torch.Tensor) -> torch.Tensor:
    return torch.cat((states, skills.one_hot(torch.full((states.shape[0],), label))), -1)


def test_seating_new_skills_keeps_what_the_network_computes_and_lets_the_labels_vary():
    agent = _one_skill_file_parts(31)
    states = torch.randn(8, SKILL_OBS_DIM - skills.NUM_SLOTS)
    with torch.no_grad():
        before = agent.actor(agent.obs_norm.normalize(_obs(31, states)))
        value_before = agent.critic(agent.obs_norm.normalize(_obs(31, states)))
        stranger = agent.actor(agent.obs_norm.normalize(_obs(1, states)))
    assert not torch.allclose(stranger, before)  # unseated, a label it never saw is a +5 input on random weights
    seated = recipe.seat_skills(agent.obs_norm, [agent.actor[0], agent.critic[0]], [1, 11, 31])
    assert seated == [1, 11, 31]
    first = SKILL_OBS_DIM - skills.NUM_SLOTS
    for lab in (1, 11, 31):
        assert float(agent.obs_norm.mean[first + lab]) == pytest.approx(1 / 3)
        assert float(agent.obs_norm.var[first + lab]) == pytest.approx(2 / 9)
        assert torch.count_nonzero(agent.actor[0].weight[:, first + lab]) == 0
    assert float(agent.obs_norm.var[first + 5]) == 0.0  # a slot the run does not use stays as it was
    with torch.no_grad():
        for lab in (1, 11, 31):  # every label does, at first, what the file did on its own
            obs = agent.obs_norm.normalize(_obs(lab, states))
            assert torch.allclose(agent.actor(obs), before, atol=1e-6)
            assert torch.allclose(agent.critic(obs), value_before, atol=1e-6)
        a = agent.obs_norm.normalize(_obs(1, states))
        b = agent.obs_norm.normalize(_obs(31, states))
    assert not torch.equal(a, b)  # the inputs now tell the labels apart, so their weights can learn


def test_seating_leaves_skills_the_file_trained_and_a_one_skill_run_on_its_own_skill():
    agent = _one_skill_file_parts(31)
    weights = agent.actor[0].weight.clone()
    assert recipe.seat_skills(agent.obs_norm, [agent.actor[0]], [31]) == []  # the layup continued on the layup
    lone = _one_skill_file_parts(31)
    assert recipe.seat_skills(lone.obs_norm, [lone.actor[0]], [13]) == [13]  # one new skill alone: seated (mean 1)
    assert float(lone.obs_norm.mean[SKILL_OBS_DIM - skills.NUM_SLOTS + 13]) == 1.0
    both = train_llc.Agent(SKILL_OBS_DIM, 5, (16, 16), -2.9)  # a file trained on two skills
    states = torch.randn(256, SKILL_OBS_DIM - skills.NUM_SLOTS)
    labels = torch.tensor([1, 31]).repeat(128)
    both.obs_norm.update(torch.cat((states, skills.one_hot(labels)), -1))
    assert recipe.seat_skills(both.obs_norm, [both.actor[0]], [1, 31]) == []
    assert recipe.seat_skills(both.obs_norm, [both.actor[0]], [1, 11, 31]) == [11]  # only the new one
    assert torch.equal(agent.actor[0].weight, weights)
