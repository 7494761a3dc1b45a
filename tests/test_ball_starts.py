"""Fitted ball starts (skillmimic.ball_starts): the rollout, the fit, the file, MotionSet's option, the environment's
flag and its record in a policy file. On a bouncing pickup clip (008_007: its ball strays 50 cm from the recording
by frame 36 from its recorded start, first contact at 79) and one clip with no entry."""

import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from paths import DATA, ROOT
from scripts import importable_env, run_python
from skillmimic import ball_starts as BS
from skillmimic import model as M
from skillmimic.envs.imitation import EnvConfig, ImitationEnv, load_motions
from skillmimic.errors import UserError
from skillmimic.motion import MotionFrames, MotionSet

sys.path.insert(0, str(ROOT / "tools"))
from ball_replay import replay  # noqa: E402

PICK = DATA / "pick_40"
MOVING = "001_008pickle_pick_007.pt"  # listed in pick_40's ball_starts.json, window 0..79
STILL = "001_022pickle_pick_5.pt"  # not listed
PHYSICS = M.Physics(palm=True)  # the recipe's, the file's
BEFORE = "21627d6"  # the commit before fitted ball starts: its MotionSet is what the option off must give


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The two clips and a ball_starts.json holding pick_40's entry of the moving one."""
    d = tmp_path_factory.mktemp("clips")
    for name in (MOVING, STILL):
        shutil.copy(PICK / name, d / name)
    starts = BS.read_ball_starts(PICK / BS.FILE_NAME)
    starts.clips = {MOVING: starts.clips[MOVING]}
    BS.write_ball_starts(d / BS.FILE_NAME, starts)
    return d


@pytest.fixture(scope="module")
def model():
    return M.load_model("rigid", physics=PHYSICS)


@pytest.fixture(scope="module")
def off(folder):
    return MotionSet(folder, hand="rigid")


@pytest.fixture(scope="module")
def on(folder):
    return MotionSet(folder, hand="rigid", ball_starts=True, physics=PHYSICS)


def test_the_rollout_replays_as_tools_ball_replay_did(off, model):
    # The study's baseline (docs/pickup_study.md): from the recorded start the ball is 15 cm off at frame 15 and
    # 50 cm at 36, 56.1 cm on average over frames 1..79; ball_replay.replay runs kinematic_ball_rollout.
    err = replay(off, model, 0, 79)  # (79,)
    assert (BS.first_beyond(err, 0.15), BS.first_beyond(err, 0.5)) == (15, 36)
    assert abs(err.mean() - 0.5612) < 5e-4 and abs(err[-1] - 1.1485) < 5e-4
    # Where the hand holds the ball (the layup's first frames), as tools/ball_replay.py printed before: 36 cm at
    # frame 20, lost (15 cm) at 12.
    held = replay(MotionSet(DATA / "layup", hand="rigid"), model, 0, 20)
    assert BS.first_beyond(held, 0.15) == 12 and abs(held[-1] - 0.3574) < 5e-4
    clip = BS.clip_reference(off, 0)
    v = off.spec.ball_qvel.start
    track = BS.kinematic_ball_rollout(model, off.spec, clip.qpos, clip.qvel, clip.ball[0], clip.qvel[0, v : v + 3],
                                      stop=79)
    assert track.pos.shape == track.lin_vel.shape == track.ang_vel.shape == (80, 3)
    assert np.array_equal(BS.ball_errors(track, clip.ball), err)
    assert np.array_equal(track.pos[0], clip.ball[0]) and not track.ang_vel[0].any()
    assert np.abs(track.ang_vel).max() > 1.0  # the bounces spin it
    w = np.array([3.0, -2.0, 5.0])  # a start spin (world) is kept in free flight (frames 0-5, before the bounce)
    spun = BS.kinematic_ball_rollout(model, off.spec, clip.qpos, clip.qvel, clip.ball[0], clip.qvel[0, v : v + 3], w,
                                     stop=5)
    assert np.allclose(spun.ang_vel, w, atol=1e-9) and np.array_equal(spun.pos[0], track.pos[0])


def test_the_free_window_ends_at_the_first_contact_or_the_re_catch():
    c = np.zeros(10, dtype=bool)
    assert BS.free_window(c) == (9, "none")
    c[6:] = True
    assert BS.free_window(c) == (6, "first contact")
    c[:3] = True  # in the hand at frame 0, released at 3, caught again at 6
    assert BS.free_window(c) == (6, "re-catch")
    assert BS.free_window(np.ones(5, dtype=bool)) == (4, "none")


def test_the_fit_lowers_the_error_of_the_recorded_start(off, model):
    fit = BS.fit_start(model, off.spec, BS.clip_reference(off, 0), maxfev=20, window_end=30)
    assert fit.window_end == 30 and fit.errors.shape == fit.baseline_errors.shape == (30,)
    assert BS.first_beyond(fit.baseline_errors, 0.15) == 15
    assert fit.errors.mean() < 0.5 * fit.baseline_errors.mean() and fit.errors.max() < 0.15
    assert not fit.ang_vel.any() and 2 <= fit.rollouts <= 2 * 20 + 2


def test_ball_starts_replace_the_ball_up_to_the_contact_and_blend_back(folder, off, on, model):
    entry = BS.read_ball_starts(folder / BS.FILE_NAME).clips[MOVING]
    assert on.ball_start_windows == {0: 79} and entry.window_end == 79 and not off.ball_start_windows
    clip = BS.clip_reference(off, 0)
    track = BS.kinematic_ball_rollout(model, on.spec, clip.qpos, clip.qvel, clip.ball[0], np.array(entry.lin_vel),
                                      np.array(entry.ang_vel), 79)
    t, o = on.table, off.table
    for name, x in (("ball_pos", track.pos), ("ball_vel", track.lin_vel), ("ball_ang_vel", track.ang_vel)):
        assert torch.equal(getattr(t, name)[:80], torch.from_numpy(x).float()), name
    assert abs(float((t.ball_pos[1:80] - o.ball_pos[1:80]).norm(dim=-1).mean()) - entry.fit_mean_m) < 1e-5
    offset = t.ball_pos[79] - o.ball_pos[79]
    assert offset.norm() > 0.05
    for j in range(1, 11):  # BLEND_FRAMES: the offset falls linearly to 0 at frame 89
        assert torch.allclose(t.ball_pos[79 + j] - o.ball_pos[79 + j], offset * (1 - j / 10), atol=1e-6)
    T = int(on.lengths[0])
    assert torch.equal(t.ball_pos[89:T], o.ball_pos[89:T]) and torch.equal(t.ball_vel[90:T], o.ball_vel[90:T])
    assert not torch.equal(t.ball_vel[80:90], o.ball_vel[80:90]) and not t.ball_ang_vel[80:].any()
    for f in dataclasses.fields(MotionFrames):  # everything else, and the other clip, as it was
        same = slice(T, None) if f.name.startswith("ball_") else slice(None)
        assert torch.equal(getattr(t, f.name)[same], getattr(o, f.name)[same]), f.name
    # A reference start carries the spin: the ball's orientation is the identity, so world = body frame.
    k = int(t.ball_ang_vel[:80].norm(dim=-1).argmax())
    qpos, qvel = on.state(torch.tensor([0]), torch.tensor([k]))
    bv = on.spec.ball_qvel
    assert torch.equal(qvel[0, bv.start + 3 : bv.stop], t.ball_ang_vel[k]) and t.ball_ang_vel[k].norm() > 1.0
    assert torch.equal(qvel[0, bv.start : bv.start + 3], t.ball_vel[k])


def test_a_reference_start_before_the_contact_follows_the_fitted_reference(on, off, model):
    # The point of the feature: the simulator, put in a reference state before the contact and its humanoid
    # replayed, keeps its ball on the reference's; from the recorded one it strays (0.40 m from frame 0, 0.57 m
    # from frame 60).
    for k in (0, 60):
        assert replay(on, model, k, k + 19).max() < 0.01
        assert replay(off, model, k, k + 19).max() > 0.15


def _old_motion_module():
    try:
        source = subprocess.run(["git", "show", f"{BEFORE}:skillmimic/motion.py"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no git history with commit {BEFORE} here")
    spec = importlib.util.spec_from_loader("motion_before_ball_starts", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{BEFORE}:skillmimic/motion.py", "exec"), module.__dict__)
    return module


def test_the_option_off_gives_the_tables_and_states_of_before(on):
    old = _old_motion_module()
    before, now = old.MotionSet(PICK, hand="rigid"), MotionSet(PICK, hand="rigid")  # beside pick_40's file
    for f in dataclasses.fields(old.MotionFrames):
        assert torch.equal(getattr(before.table, f.name), getattr(now.table, f.name)), f.name
    assert not now.table.ball_ang_vel.any() and not now.ball_starts
    frames = torch.arange(int(now.lengths.max()))
    for i in range(now.num_motions):
        ids = torch.full_like(frames, i)
        for a, b in zip(before.state(ids, frames), now.state(ids, frames)):
            assert torch.equal(a, b)


def test_a_folder_of_all_clips_uses_each_clip_folders_file():
    motions = MotionSet([PICK / MOVING, DATA / "layup"], hand="rigid", ball_starts=True, physics=PHYSICS)
    assert motions.ball_start_windows == {0: 79}


def _write(folder, tmp_path, edit) -> MotionSet:
    """A copy of folder whose ball_starts.json is edited (edit(doc) on the parsed JSON, or a string: the text)."""
    d = tmp_path / "edited"
    shutil.copytree(folder, d)
    path = d / BS.FILE_NAME
    if isinstance(edit, str):
        path.write_text(edit)
    else:
        doc = json.loads(path.read_text())
        edit(doc)
        path.write_text(json.dumps(doc))
    return d


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(hand="full"), "fitted with the full hand, the clips are loaded for the rigid hand"),
    (lambda d: d["physics"].update(ball_restitution=0.82),
     "fitted with other ball physics: ball_restitution 0.82 (here None)"),
    (lambda d: d.update(format="skillmimic-ball-starts/0"), "format 'skillmimic-ball-starts/0', expected"),
    (lambda d: d["clips"][MOVING].pop("lin_vel"), f"clip {MOVING}: missing field 'lin_vel'"),
    (lambda d: d["clips"][MOVING].update(window_end=1000), f"{MOVING}: window_end 1000, but the clip has 164 frames"),
    (lambda d: d["clips"][MOVING].update(ball_pos=[0.0, 0.0, 0.12]), f"{MOVING}: fitted for a ball at"),
    (lambda d: d["physics"].update(spin=1), "unknown physical options"),
    ('{"format": ', "not a JSON file"),
])
def test_a_file_that_does_not_fit_is_refused_in_one_line(folder, tmp_path, edit, message):
    d = _write(folder, tmp_path, edit)
    with pytest.raises(BS.BallStartsError) as e:
        MotionSet(d, hand="rigid", ball_starts=True, physics=PHYSICS)
    assert isinstance(e.value, UserError) and message in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith(str(d / BS.FILE_NAME))
    MotionSet(d, hand="rigid")  # the option off never reads it


def _run(script, *args, cwd=ROOT):
    return run_python(*script, *args, cwd=cwd, env=importable_env(OMP_NUM_THREADS="1"))


def test_the_tool_fits_the_moving_clips_and_keeps_an_existing_file(folder, tmp_path):
    d = tmp_path / "clips"
    shutil.copytree(folder, d)
    r = _run([str(ROOT / "tools" / "fit_ball_starts.py")], "--motion-dir", d, "--maxfev", 3)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: {d / BS.FILE_NAME}: exists; pass --overwrite to replace it"]
    r = _run([str(ROOT / "tools" / "fit_ball_starts.py")], "--motion-dir", d, "--maxfev", 3, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert "| 001_008pickle_pick_007 | 79 |" in r.stdout and "clip 1 of 1" in r.stderr  # the moving clip alone
    starts = BS.read_ball_starts(d / BS.FILE_NAME)
    assert list(starts.clips) == [MOVING] and starts.hand == "rigid" and starts.physics == PHYSICS
    assert starts.clips[MOVING].fit_mean_m <= starts.clips[MOVING].baseline_mean_m
    assert [p.name for p in d.iterdir() if p.name.startswith(".")] == []  # no temporary file left


FAST = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2", "--device", "cpu",
        "--hidden", "64", "64", "--warm-start-steps", "20", "--iterations", "1"]


def test_the_environment_flag_is_recorded_in_the_policy_and_evaluated_with(folder, tmp_path):
    from skillmimic import checkpoint
    from skillmimic.evaluate import evaluation_config
    from skillmimic.envs.observations import SKILL_OBS_DIM
    from skillmimic.policy import POLICY_FORMAT, SkillPolicy, load_policy, save_policy

    train = [str(ROOT / "train_llc.py"), *FAST, "--motion-dir", folder]
    r = _run(train, "--run-dir", tmp_path / "plain")
    assert r.returncode == 0, r.stderr
    plain = load_policy(tmp_path / "plain" / "policy.pt", num_obs=SKILL_OBS_DIM)
    assert plain.ball_starts is False and evaluation_config(plain, 5).ball_starts is False
    # A run continued from it with the fitted starts: an environment setting, not a network's shape.
    r = _run(train, "--run-dir", tmp_path / "fitted", "--init-from", tmp_path / "plain" / "policy.pt",
             "--env.ball-starts")
    assert r.returncode == 0, r.stderr
    path = tmp_path / "fitted" / "policy.pt"
    policy = load_policy(path, num_obs=SKILL_OBS_DIM)
    assert policy.ball_starts is True and evaluation_config(policy, 5).ball_starts is True
    saved = checkpoint.load(tmp_path / "fitted" / "checkpoint.pt", "skillmimic-llc-train/1")["args"]
    assert saved["env"]["ball_starts"] is True
    r = _run(["-m", "skillmimic.evaluate"], "--checkpoint", path, "--motion-dir", folder, "--episodes", 2,
             "--horizon", 5, "--device", "cpu", "--backend", "mujoco")
    assert r.returncode == 0, r.stderr
    assert "fitted ball starts on 1 clips" in r.stdout
    # --ball-starts overrides the file: the recorded ball for this policy, the fitted one for the plain policy.
    r = _run(["-m", "skillmimic.evaluate"], "--checkpoint", path, "--motion-dir", folder, "--episodes", 2,
             "--horizon", 5, "--device", "cpu", "--backend", "mujoco", "--ball-starts", "off")
    assert r.returncode == 0, r.stderr
    assert "fitted ball starts" not in r.stdout
    r = _run(["-m", "skillmimic.evaluate"], "--checkpoint", tmp_path / "plain" / "policy.pt", "--motion-dir",
             folder, "--episodes", 2, "--horizon", 5, "--device", "cpu", "--backend", "mujoco",
             "--ball-starts", "on")
    assert r.returncode == 0, r.stderr
    assert "fitted ball starts on 1 clips" in r.stdout
    # A file from before the option reads as off.
    old = tmp_path / "old.pt"
    save_policy(SkillPolicy(SKILL_OBS_DIM, 66, (8,), 1.5, 2.0, hand="rigid"), old)
    assert "ball_starts" not in checkpoint.load(old, POLICY_FORMAT) and load_policy(old).ball_starts is False


def test_the_environment_refuses_a_motion_set_loaded_without_its_ball_starts(folder, off, on):
    cfg = EnvConfig(backend="mujoco", hand="rigid", physics=PHYSICS, ball_starts=True)
    with pytest.raises(ValueError, match="load it with load_motions"):
        ImitationEnv(cfg, off, 1, "cpu")
    with pytest.raises(ValueError, match="load it with load_motions"):
        ImitationEnv(dataclasses.replace(cfg, ball_starts=False), on, 1, "cpu")
    env = ImitationEnv(cfg, load_motions(folder, cfg), 1, "cpu")
    assert env.motions.ball_start_windows == {0: 79}
