import dataclasses
import json

import pytest
import torch

from paths import ROOT
from scripts import importable_env, run_python
from skillmimic import checkpoint
from skillmimic import model as M
from skillmimic.envs.observations import SKILL_OBS_DIM
from skillmimic.evaluate import accuracy, ball_loss, reference_trajectory, success
from skillmimic.policy import POLICY_FORMAT, SkillPolicy, load_policy, save_policy

T, E = 300, 2


def _traj(ball_z=0.12, root_z=0.9, ball_xy=(0.3, 0.0)):
    root = torch.zeros(T, E, 3)
    root[..., 2] = root_z
    ball = torch.zeros(T, E, 3)
    ball[..., 0], ball[..., 1], ball[..., 2] = ball_xy[0], ball_xy[1], ball_z
    return {"root": root, "ball": ball, "body": torch.zeros(T, E, 53, 3), "hand": torch.zeros(T, E, dtype=torch.bool),
            "ball_floor": torch.zeros(T, E, dtype=torch.bool), "alive": torch.ones(T, E, dtype=torch.bool)}


def test_pickup_success():
    t = _traj(ball_z=1.0)
    t["ball"][:, 1, 0] = 2.0  # episode 1: the ball stays far away
    assert success(1, t, torch.zeros(E)).tolist() == [True, False]


def test_layup_success_needs_height_early_and_standing():
    t = _traj()
    t["ball"][250, :, 2] = 2.0  # high before step 300 in both
    t["alive"][280:, 1] = False  # episode 1 falls afterwards
    assert success(31, t, torch.zeros(E)).tolist() == [True, False]
    t = _traj()
    t["ball"][299:, :, 2] = 2.0  # only at step 299: still before 300
    assert success(34, t, torch.zeros(E)).all()


def test_shot_success_compares_peaks():
    t = _traj()
    t["ball"][100, 0, 2] = 3.1
    t["ball"][100, 1, 2] = 2.5
    assert success(5, t, torch.tensor([3.0, 3.0])).tolist() == [True, False]


def test_dribble_success_needs_bounces_in_every_window():
    t = _traj()
    t["ball_floor"][100::30] = True  # a bounce every half second from step 100
    t["ball_floor"][220:280, 1] = False  # episode 1 holds the ball for a whole window
    assert success(13, t, torch.zeros(E)).tolist() == [True, False]
    t["ball"][150, 0, 0] = 3.0  # episode 0 loses the ball once
    assert not success(13, t, torch.zeros(E))[0]
    assert success(41, t, torch.zeros(E)) is None  # no test for this skill


def test_accuracy_perfect_and_off():
    t = _traj()
    ref = {"body": t["body"].clone(), "ball": t["ball"].clone(), "contact": torch.zeros(T, E)}
    a = accuracy(t, ref, torch.tensor([T, T]))
    assert a["accuracy"] == 1.0 and a["body_error_mm"] == 0.0 and a["ball_error_mm"] == 0.0
    ref["contact"][:, 0] = 1.0  # episode 0 never touches the ball the label says it holds
    assert abs(accuracy(t, ref, torch.tensor([T, T]))["accuracy"] - 0.5) < 1e-6


def test_ball_loss_counts_the_first_step_off_on_the_clip_before_a_fall():
    t = _traj()
    ref = {"body": t["body"].clone(), "ball": t["ball"].clone(), "contact": torch.zeros(T, E)}
    assert ball_loss(t, ref, torch.tensor([T, T])) == {"ball_lost": 0.0, "ball_lost_step_median": None}
    t["ball"][40:, 0, 0] += 0.6  # episode 0 loses the ball at step 41 (1-based)
    t["ball"][200:, 1, 0] += 0.6  # episode 1 only after its clip's 150 frames, and after its fall at step 101
    t["alive"][100:, 1] = False
    assert ball_loss(t, ref, torch.tensor([T, 150])) == {"ball_lost": 0.5, "ball_lost_step_median": 41.0}
    t["alive"][100:, 1] = True  # standing, but past its clip: the clip's frames alone count
    assert ball_loss(t, ref, torch.tensor([T, 150]))["ball_lost"] == 0.5
    assert ball_loss(t, ref, torch.tensor([T, T])) == {"ball_lost": 1.0, "ball_lost_step_median": 41.0}


def _policy(hand: str, hidden=(32,)) -> SkillPolicy:
    spec = M.load_spec(hand)
    return SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, hidden, 1.5, 2.0, hand=hand, model_sha256=spec.sha256)


def test_evaluate_command_runs_on_a_policy_of_its_hand(tmp_path):
    path = tmp_path / "policy.pt"
    save_policy(_policy("rigid"), path)
    policy = load_policy(path, num_obs=SKILL_OBS_DIM)
    assert policy.hand == "rigid" and policy(torch.zeros(1, SKILL_OBS_DIM)).shape == (1, 66)
    out = tmp_path / "eval.json"
    # Run from another folder: the default motion folder (the layup clip) is found from the package.
    r = run_python("-m", "skillmimic.evaluate", "--checkpoint", path, "--episodes", "2", "--horizon", "10", "--device",
                   "cpu", "--json-out", out, cwd=tmp_path, timeout=300, env=importable_env())
    assert r.returncode == 0, r.stderr
    assert "031 layup" in r.stdout
    (res,) = json.loads(out.read_text())["skills"]
    assert res["label"] == "031" and res["episodes"] == 2 and 0.0 <= res["accuracy"] <= 1.0
    # 10 steps: the clip's own ball is not yet above 1.8 m, so no episode's reference passes and nothing is left
    assert res["reference_success"] == 0.0 and res["success_where_reference_passes"] is None


def test_policy_of_another_hand_or_model_is_refused_in_one_line(tmp_path):
    path = tmp_path / "rigid.pt"
    save_policy(_policy("rigid"), path)
    sha = M.load_spec("rigid").sha256[:12]
    with pytest.raises(checkpoint.CheckpointError) as e:
        load_policy(path, hand="full")
    assert str(e.value) == (f"{path}: trained on the rigid hand (66 actions, MJCF sha256 {sha}); this model is the "
                            f"full hand (156 actions, humanoid_ball.xml sha256 {M.load_spec('full').sha256[:12]})")
    # The same hand from another MJCF (a changed model file) is refused too.
    ckpt = checkpoint.load(path, POLICY_FORMAT)
    ckpt["model_sha256"] = "0" * 64
    checkpoint.save_atomic(ckpt, path)
    with pytest.raises(checkpoint.CheckpointError, match="trained on the rigid hand .* sha256 000000000000\\); "
                                                         "this model is the rigid hand"):
        load_policy(path)
    # A file from before hands were recorded is a full-hand policy.
    old = tmp_path / "old.pt"
    save_policy(_policy("full"), old)
    ckpt = checkpoint.load(old, POLICY_FORMAT)
    del ckpt["hand"], ckpt["model_sha256"]
    checkpoint.save_atomic(ckpt, old)
    legacy = load_policy(old)
    assert legacy.hand == "full" and legacy.model_sha256 is None and legacy.num_actions == 156
    with pytest.raises(checkpoint.CheckpointError, match="trained on the full hand"):
        load_policy(old, hand="hinge1")
    # The shipped policy: the rigid hand, recorded.
    shipped = load_policy(ROOT / "skillmimic" / "assets" / "llc_policy.pt")
    assert shipped.hand == "rigid" and shipped.model_sha256 == M.load_spec("rigid").sha256


def test_policy_for_another_environment_is_a_clear_error(tmp_path):
    path = tmp_path / "small.pt"
    save_policy(SkillPolicy(10, 156, (8,), 1.5, 2.0), path)
    message = f"made for num_obs=10, this model has num_obs={SKILL_OBS_DIM}"
    with pytest.raises(checkpoint.CheckpointError, match=message):
        load_policy(path, num_obs=SKILL_OBS_DIM)


def test_the_shipped_layup_policy_lays_up_on_the_default_ball_and_hand(tmp_path):
    """skillmimic/assets/llc_layup.pt (docs/llc_recipe.md, round 7: 94% success on plain MuJoCo over 256 episodes)
    on the default physics, and most of four episodes from the clip's start succeed on this CPU."""
    shipped = load_policy(ROOT / "skillmimic" / "assets" / "llc_layup.pt", num_obs=SKILL_OBS_DIM)
    assert shipped.hand == "rigid" and shipped.model_sha256 == M.load_spec("rigid").sha256
    assert shipped.physics == M.Physics(palm=True)  # FIBA's ball, the box palm, contacts on overlap
    assert set(shipped.critic_state) == {"critic", "value_norm"}  # it can be continued (--init-from)
    out = tmp_path / "eval.json"
    r = run_python("-m", "skillmimic.evaluate", "--checkpoint", ROOT / "skillmimic" / "assets" / "llc_layup.pt",
                   "--episodes", "4", "--device", "cpu", "--backend", "mujoco", "--json-out", out, cwd=tmp_path,
                   env=importable_env())
    assert r.returncode == 0, r.stderr
    (res,) = json.loads(out.read_text())["skills"]
    assert res["label"] == "031" and res["success"] >= 0.5, res


def test_skills_played_at_once_are_the_episodes_each_would_play_alone():
    """evaluate_skills plays every skill in one environment: each skill's results are those of an environment of
    its own (the worlds do not interact), here on the shipped layup policy, two skills of 3 clips and 1."""
    from paths import DATA
    from skillmimic.evaluate import Args, evaluate_skills
    from skillmimic.motion import MotionSet

    policy = load_policy(ROOT / "skillmimic" / "assets" / "llc_layup.pt")
    motions = MotionSet([DATA / "layup", DATA / "run"], hand=policy.hand)
    args = Args(episodes=4, horizon=40, device="cpu", backend="mujoco")
    together = evaluate_skills(policy, motions, [31, 13], args, torch.device("cpu"))
    alone = [evaluate_skills(policy, motions, [label], args, torch.device("cpu"))[0] for label in (31, 13)]
    assert [r["label"] for r in together] == ["031", "013"]
    assert together == alone
    assert together[0]["accuracy"] > 0.0  # the layup policy plays its clip


def test_per_clip_results_split_each_skill_by_the_clip_its_episodes_started_on():
    """--per-clip: each skill's entry also lists its clips (the motion set's order) with the results of the
    episodes that started on them; they add up to the skill's."""
    from paths import DATA
    from skillmimic.evaluate import Args, evaluate_skills
    from skillmimic.motion import MotionSet

    policy = load_policy(ROOT / "skillmimic" / "assets" / "llc_layup.pt")
    motions = MotionSet(DATA / "run", hand=policy.hand)  # the dribble forward's 3 clips
    args = Args(episodes=5, horizon=30, device="cpu", backend="mujoco", per_clip=True)
    (res,) = evaluate_skills(policy, motions, [13], args, torch.device("cpu"))
    clips = res["clips"]
    assert [c["clip"] for c in clips] == [f.name for f in motions.files]
    assert [c["episodes"] for c in clips] == [2, 2, 1]  # episodes take the clips in turn
    for key in ("fell", "success", "ball_lost"):
        assert abs(sum(c[key] * c["episodes"] for c in clips) / 5 - res[key]) < 1e-6
    plain = evaluate_skills(policy, motions, [13], dataclasses.replace(args, per_clip=False), torch.device("cpu"))
    assert plain == [{k: v for k, v in res.items() if k != "clips"}]


def test_the_reference_passes_the_test_only_where_the_clip_itself_does():
    """A pickup clip that holds the ball near the root only from step 250 of 300 (50 frames, the test asks for more
    than 60) fails its own test; one that holds it from step 200 passes. The ball on the floor is read from its
    height."""
    body = torch.zeros(T, E, 53, 3)
    body[..., 0, 2] = 0.9  # the root standing
    ball = torch.zeros(T, E, 3)
    ball[..., 0], ball[..., 2] = 2.0, M.BALL_RADIUS  # lying 2 m away
    ball[250:, 0] = torch.tensor([0.2, 0.0, 1.0])  # episode 0: picked up at step 250
    ball[200:, 1] = torch.tensor([0.2, 0.0, 1.0])  # episode 1: at step 200
    ref = reference_trajectory({"body": body, "ball": ball, "contact": torch.zeros(T, E)})
    assert success(1, ref, torch.zeros(E)).tolist() == [False, True]
    assert ref["ball_floor"][0].tolist() == [True, True] and ref["ball_floor"][-1].tolist() == [False, False]
    assert bool(ref["alive"].all()) and ref["root"].shape == (T, E, 3)


def test_the_reference_check_leaves_out_the_dribbles(tmp_path):
    """The dribble's test runs past the clip's end, which the clip does not hold: its reference check is n/a, the
    layup's is asked (evaluate's _results on one skill of each, the policy's trajectory standing in for the clip's)."""
    from skillmimic.evaluate import _results
    from skillmimic.motion import MotionSet
    motions = MotionSet(ROOT / "data" / "BallPlay-M" / "layup", device="cpu")
    ids = torch.zeros(E, dtype=torch.long)
    t = _traj()
    r = {"body": t["body"], "ball": t["ball"], "contact": torch.zeros(T, E)}
    layup = _results(31, t, r, motions, ids)
    dribble = _results(13, t, r, motions, ids)
    assert layup["reference_success"] == 0.0 and layup["success_where_reference_passes"] is None
    assert dribble["reference_success"] is None and dribble["success_where_reference_passes"] is None
