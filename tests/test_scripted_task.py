"""tools/scripted_task.py: the scripts' choices and the trace's readings on hand-set tensors, TaskEnv's first-frame
starts, and the tool end to end on the shipped skill policy (CPU, seconds)."""

import json
import math
import os
import subprocess
import sys

import torch

from paths import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import scripted_task as st  # noqa: E402
from skillmimic import skills  # noqa: E402
from skillmimic.envs.observations import SKILL_OBS_DIM  # noqa: E402
from skillmimic.envs.task_env import TaskEnv, TaskEnvConfig  # noqa: E402
from skillmimic.policy import SkillPolicy  # noqa: E402
from skillmimic.rotations import quat_mul  # noqa: E402
from skillmimic.tasks import TASKS  # noqa: E402
from skillmimic.tasks.state import TaskState  # noqa: E402


def _quat(yaw: float) -> torch.Tensor:
    """The pelvis standing with heading `yaw` (as tests/test_tasks.py builds it). -> (1, 4)"""
    stand = torch.tensor([[math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0]])
    return quat_mul(torch.tensor([[math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]]), stand)


def test_steering_picks_forward_in_the_cone_and_the_goals_side_outside_it():
    root, quat = torch.tensor([[0.0, 0.0, 0.9]] * 3), _quat(math.pi / 2).expand(3, 4)  # facing +y
    goals = torch.tensor([[0.1, 3.0], [-3.0, 1.0], [3.0, 1.0]])  # ahead; to its left (-x); to its right (+x)
    angle = st.bearing(root, quat, goals)
    assert abs(float(angle[0])) < 0.05 and angle[1] > 1.0 and angle[2] < -1.0
    assert st.steer_labels(angle, math.radians(20)).tolist() == [skills.DRIBBLE_FORWARD, skills.DRIBBLE_LEFT,
                                                                  skills.DRIBBLE_RIGHT]


def test_hold_and_circle_target():
    s = TaskState(root_pos=torch.tensor([[0.0, 0.0, 0.9], [0.0, 0.0, 0.9], [0.0, 0.0, 0.3]]),
                  root_quat=_quat(0.0).expand(3, 4), root_vel=torch.zeros(3, 3),
                  ball_pos=torch.tensor([[0.3, 0.0, 1.0], [0.9, 0.0, 1.0], [0.2, 0.0, 0.3]]),
                  ball_vel=torch.zeros(3, 3), hand_ball=torch.tensor([True, True, True]),
                  standing=torch.ones(3, dtype=torch.bool))
    assert st.held(s).tolist() == [True, False, False]  # near and up; too far; pelvis on the floor
    target = st.circle_target(s, torch.tensor([[-2.0, 0.0]] * 3), torch.full((3,), 2.0),
                              torch.full((3,), math.pi / 2))
    assert torch.allclose(target[0], torch.tensor([-2.0, 2.0]), atol=1e-6)  # a quarter lap counter-clockwise


def test_switch_context_counts_steps_since_the_last_switch():
    skill = torch.tensor([[13, 1], [13, 1], [11, 1], [11, 5], [13, 5]])  # (T=5, E=2)
    last, since, switches = st.switch_context(skill, torch.tensor([4, 5]))
    assert last.tolist() == [11, 5] and since.tolist() == [2, 2] and switches.tolist() == [1, 1]
    last, since, switches = st.switch_context(skill, torch.tensor([2, 3]))
    assert last.tolist() == [13, 1] and since.tolist() == [2, 3] and switches.tolist() == [0, 0]


def test_free_peaks_rim_crossings_and_first_step():
    vz = torch.tensor([[1.0, 1.0], [-0.5, -0.5], [-1.0, 1.0], [-1.0, -1.0]])
    hand = torch.tensor([[False, False], [False, True], [False, False], [False, False]])
    peaks = st.free_peaks(torch.zeros(4, 2), vz, hand, torch.tensor([1.0, 1.0]))
    assert peaks.tolist() == [[False, False], [True, False], [False, False], [False, True]]  # held at step 1: none
    assert st.first_step(peaks).tolist() == [1, 3]
    assert st.first_step(torch.zeros(3, 1, dtype=torch.bool)).tolist() == [-1]
    ball = torch.tensor([[[1.0, 0.0, 2.6]], [[2.0, 0.0, 2.4]], [[3.0, 0.0, 2.6]]])  # down through 2.5 at x = 1.5
    down, where = st.rim_crossings(ball, torch.tensor([[0.0, 0.0, 2.0]]))
    assert down[:, 0].tolist() == [False, True, False] and torch.allclose(where[1, 0], torch.tensor([1.5, 0.0]))
    assert st._bins([1.0, 2.5, 2.9], 5) == {"<1.8": 1, "1.8-2.2": 0, "2.2-2.8": 1, ">=2.8": 1, "none": 2}


def test_first_frame_starts_the_same_clips_at_frame_zero(all_motions):
    llc = SkillPolicy(SKILL_OBS_DIM, 156, (32,), math.pi / 2, 2.0)  # a full-hand policy, as all_motions
    cls, cfg_cls = TASKS["throwing"]
    envs = [TaskEnv(TaskEnvConfig(backend="mujoco", first_frame=f), cls, cfg_cls(), llc, all_motions, 4, "cpu", seed=3)
            for f in (False, True)]
    for env in envs:
        env.reset()
    assert envs[0].start_clip.tolist() == envs[1].start_clip.tolist()
    assert envs[0].start_frame.gt(0).any() and envs[1].start_frame.eq(0).all()
    qpos, _ = all_motions.state(envs[1].start_clip, envs[1].start_frame)
    assert torch.allclose(envs[1].sim.qpos, qpos, atol=1e-5)


def _tool(*args, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
    return subprocess.run([sys.executable, str(ROOT / "tools" / "scripted_task.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def test_the_tool_traces_a_scripted_throw_and_refuses_a_script_its_task_cannot_play(tmp_path):
    args = ("--task", "throwing", "--script", "pickup-then", "--episodes", 2, "--max-episode-steps", 24,
            "--json-out", tmp_path / "t.json", "--csv-out", tmp_path / "t.csv")
    out = _tool(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("throwing, pickup-then then 005, 2 episodes: success")
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["summary"]["episodes"] == 2 and len(data["episodes"]) == 2
    for row in data["episodes"]:
        assert 1 <= row["steps"] <= 24 and row["outcome"] in ("success", "fell", "timed_out")
        assert set(row["skill_shares"]) == {"001", "005", "031", "013"} and "first_hold_step" in row
    assert len((tmp_path / "t.csv").read_text().strip().splitlines()) == 3  # a header and two episodes
    bad = _tool("--task", "throwing", "--script", "steer", "--episodes", 1, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: --script steer")


def test_heading_change_unwraps_and_stops_at_the_episodes_end():
    yaws = [0.0, 2.0, 3.0, -3.0, -2.0]  # left all the way: 3 -> -3 is a turn of 2 pi - 6 rad, not -6
    quat = torch.cat([_quat(y) for y in yaws])[:, None].expand(5, 2, 4)  # (T + 1 = 5, E = 2, 4)
    turned = st.heading_change(quat, torch.tensor([4, 2]))
    assert torch.allclose(turned, torch.tensor([2 * math.pi - 2.0, 3.0]), atol=1e-4)


def test_sticky_draw_keeps_with_its_probability_and_longest_run_counts_consecutive_steps():
    gen = torch.Generator().manual_seed(0)
    last = torch.arange(4).repeat(2500)  # 10,000 worlds
    for stick in (0.0, 0.9):
        new = st.sticky_draw(last, 4, stick, gen)
        assert new.min() >= 0 and new.max() <= 3
        kept = float((new == last).float().mean())
        assert abs(kept - (stick + (1 - stick) / 4)) < 0.02, (stick, kept)  # kept, or drawn again
    flag = torch.tensor([[1, 0], [1, 1], [0, 1], [1, 1], [1, 0], [1, 0]], dtype=torch.bool)  # (T=6, E=2)
    assert st.longest_run(flag).tolist() == [3, 3]


def test_the_random_controller_holds_its_draws_and_refuses_a_stick_of_one_and_its_settings_elsewhere(tmp_path):
    """--repeat 2 at 6 control steps a decision: the skill changes only every 12 control steps."""
    out = _tool("--task", "throwing", "--script", "random", "--stick", 0.5, "--repeat", 2, "--llc-steps", 6,
                "--episodes", 3, "--max-episode-steps", 48, "--json-out", tmp_path / "r.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("throwing, random stick 0.5 repeat 2, 6 control steps a decision, 3 episodes")
    for row in json.loads((tmp_path / "r.json").read_text())["episodes"]:
        assert row["switches"] <= (row["steps"] - 1) // 12  # changes only at control steps 12, 24, 36
    bad = _tool("--task", "throwing", "--script", "random", "--stick", 1, "--episodes", 1, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == "error: --stick 1.0: must be a probability " \
        "in [0, 1)"
    bad = _tool("--task", "throwing", "--script", "fixed", "--repeat", 3, "--episodes", 1, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == "error: --stick, --repeat: settings of " \
        "--script random, not of --script fixed"
