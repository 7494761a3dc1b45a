"""skillmimic.evaluate_switch: the switch happens at the lead's step, the tests read the window after it, the
command writes a matrix over the key map's skills, and a bad flag is one line."""

import json
import re

import pytest
import torch

from paths import DATA, ROOT
from scripts import importable_env, run_python
from skillmimic import model as M
from skillmimic import skills
from skillmimic.cli import parse
from skillmimic.envs.observations import SKILL_OBS_DIM
from skillmimic.errors import UserError
from skillmimic.evaluate_switch import Args, main, play_switches, switch_env, switch_success
from skillmimic.motion import MotionSet
from skillmimic.policy import SkillPolicy, load_policy, policy_file

SHIPPED = ROOT / "skillmimic" / "assets" / "llc_policy.pt"
T, E = 120, 2


def _window(ball_z=1.0):
    """A window of T steps of E episodes: standing, the ball in front of the root, no contact."""
    root = torch.zeros(T, E, 3)
    root[..., 2] = 0.9
    ball = torch.zeros(T, E, 3)
    ball[..., 0], ball[..., 2] = 0.3, ball_z
    return {"root": root, "ball": ball, "hand": torch.zeros(T, E, dtype=torch.bool),
            "ball_floor": torch.zeros(T, E, dtype=torch.bool), "alive": torch.ones(T, E, dtype=torch.bool)}


def test_a_ball_flying_at_the_switch_is_no_layup_or_shot_of_the_new_skill():
    w = _window(ball_z=2.5)  # X threw it before the switch: high from the first step, never touched
    assert not switch_success(skills.LAYUP, w, torch.zeros(E)).any()
    assert not switch_success(skills.SHOT, w, torch.full((E,), 2.5)).any()
    w["hand"][10, 0] = True  # episode 0 touches it, and it is high after the touch
    assert switch_success(skills.LAYUP, w, torch.zeros(E)).tolist() == [True, False]
    assert switch_success(skills.SHOT, w, torch.full((E,), 2.5)).tolist() == [True, False]
    w["alive"][100:, 0] = False  # the layup also asks to be standing at the window's end
    assert not switch_success(skills.LAYUP, w, torch.zeros(E))[0]


def test_a_dribble_after_a_switch_bounces_and_touches_in_every_window_from_the_switch():
    w = _window(ball_z=0.12)
    w["ball_floor"][::30] = True  # a bounce every half second from the switch
    w["hand"][15::30] = True  # and a hand on the ball between bounces
    assert switch_success(skills.DRIBBLE_FORWARD, w, torch.zeros(E)).all()
    w["hand"][60:, 1] = False  # episode 1's ball lies at its feet for the second window: not a dribble
    assert switch_success(skills.DRIBBLE_LEFT, w, torch.zeros(E)).tolist() == [True, False]
    w["ball_floor"][:60, 0] = False  # episode 0 bounces only from the second window: the first counts too
    assert not switch_success(skills.DRIBBLE_RIGHT, w, torch.zeros(E))[0]


def test_pickup_after_a_switch_is_evaluate_s_hold_test_and_other_skills_have_none():
    w = _window()
    w["ball"][:, 1, 0] = 2.0  # episode 1's ball is out of reach
    assert switch_success(skills.PICKUP, w, torch.zeros(E)).tolist() == [True, False]
    assert switch_success(41, w, torch.zeros(E)) is None


def test_the_switch_changes_the_policy_s_skill_input_at_the_lead_step():
    policy = load_policy(SHIPPED, num_obs=SKILL_OBS_DIM)
    motions = MotionSet([DATA / "shot_style1", DATA / "layup"], hand=policy.hand)
    pairs = [(skills.SHOT, skills.LAYUP), (skills.LAYUP, skills.SHOT), (skills.LAYUP, skills.LAYUP)]
    args = Args(episodes=2, lead=3, after=4, backend="mujoco")
    seen = []  # the skill slot of each world's observation, call by call
    hook = policy.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0][:, -skills.NUM_SLOTS:]))
    try:
        at_switch, window = play_switches(policy, switch_env(policy, motions, len(pairs), args, "cpu"), pairs, args)
    finally:
        hook.remove()
    W = len(pairs) * args.episodes
    assert at_switch.shape == (W,) and window["alive"].shape == (4, W) and window["ball"].shape == (4, W, 3)
    from_labels = torch.tensor([x for x, _ in pairs]).repeat_interleave(args.episodes)
    to_labels = torch.tensor([y for _, y in pairs]).repeat_interleave(args.episodes)
    assert len(seen) == args.lead + args.after
    for k, condition in enumerate(seen):
        expected = from_labels if k < args.lead else to_labels  # the key is pressed after `lead` steps of X
        assert torch.equal(condition, skills.one_hot(expected)), f"call {k}"


def test_the_command_writes_a_matrix_over_the_key_map_s_skills(tmp_path):
    out = tmp_path / "switch.json"
    # Run from another folder: the shipped policy, the clips and the key map are found from the package.
    r = run_python("-m", "skillmimic.evaluate_switch", "--episodes", "2", "--lead", "5", "--after", "10", "--device",
                   "cpu", "--json-out", out, cwd=tmp_path, timeout=300, env=importable_env())
    assert r.returncode == 0, r.stderr
    assert "Standing" in r.stdout and "034 turnaround layup" in r.stdout
    res = json.loads(out.read_text())
    # configs/play/keys.yaml's skills, all of which have clips in data/BallPlay-M and were learned by the policy
    labels = ["001", "005", "011", "012", "013", "031", "034"]
    assert res["labels"] == labels and len(res["skills"]) == 7
    assert [(p["from"], p["to"]) for p in res["pairs"]] == [(x, y) for x in labels for y in labels]
    for p in res["pairs"]:
        assert p["episodes"] == 2 and 0.0 <= p["standing_at_switch"] <= 1.0
        assert p["standing"] is None or 0.0 <= p["standing"] <= 1.0
        assert (p["success"] is None) == (p["standing"] is None)  # every key-map skill has a test
    for key in ("standing", "success"):
        assert len(res[key]) == 7 and all(len(row) == 7 for row in res[key])
    assert res["standing"][1][5] == res["pairs"][7 + 5]["standing"]  # rows from, columns to


def _main(*flags: str) -> dict:
    return main(parse(Args, ["--device", "cpu", *flags]))


@pytest.mark.parametrize("flags, message", [
    (("--episodes", "0"), "--episodes 0: must be at least 1"),
    (("--lead", "-1"), "--lead -1: must be at least 0"),
    (("--labels", "99"), "--labels 99: not a skill label (0 to 63)"),
    (("--labels", "5", "8"), "--labels 8: no clips of skill 008 in"),
    (("--checkpoint", "none.pt"), "none.pt: no such checkpoint file"),
    (("--plot", "switch.jpg"), "--plot switch.jpg: name a .png file"),
])
def test_a_bad_flag_is_one_clear_line(flags, message):
    with pytest.raises(UserError, match=re.escape(message)) as e:
        _main(*flags)
    assert "\n" not in str(e.value)


def test_a_skill_the_policy_did_not_learn_is_refused(tmp_path):
    spec = M.load_spec("rigid")
    policy = SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (8,), 1.5, 2.0, "rigid", spec.sha256)
    path = tmp_path / "layup_only.pt"
    torch.save(policy_file(policy.actor, policy.obs_norm, SKILL_OBS_DIM, spec.num_dofs, (8,), 1.5, 2.0, hand="rigid",
                           model_sha256=spec.sha256, skill_labels=[31]), path)
    with pytest.raises(UserError, match=f"--labels 5: {path} did not learn skill 005 \\(it learned 031\\)"):
        _main("--checkpoint", str(path), "--labels", "5", "31")


def test_a_user_error_on_the_command_line_is_one_line_and_status_2(tmp_path):
    r = run_python("-m", "skillmimic.evaluate_switch", "--labels", "5", "8", "--device", "cpu", cwd=tmp_path,
                   timeout=300, env=importable_env())
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --labels 8: no clips of skill 008 in "), r.stderr
