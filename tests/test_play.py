"""play.py: the key map, headless runs (dataset replay and a policy) and a real window under Xvfb."""

import os
import shutil
import subprocess
import sys
import time

import imageio.v2 as imageio
import pytest

from paths import ROOT
from scripts import run_python
from skillmimic import model as M
from skillmimic.envs.observations import SKILL_OBS_DIM
from skillmimic.policy import SkillPolicy, save_policy
from skillmimic.viz.viewer import SkillKeys


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "policy.pt"
    save_policy(SkillPolicy(SKILL_OBS_DIM, M.load_spec("full").num_dofs, (32,), 1.5, 2.0), path)
    return path


def _play(*args, env=None, timeout=300, cwd=ROOT):
    return run_python(ROOT / "play.py", *args, cwd=cwd, timeout=timeout, env=env)


def test_key_map_from_config():
    keys = SkillKeys.from_file(ROOT / "configs" / "play" / "keys.yaml")
    assert [keys.label(k) for k in ("Q", "W", "LEFT", "UP", "RIGHT", "E", "R")] == [1, 5, 11, 13, 12, 31, 34]
    assert keys.label("q") == 1 and keys.label("Z") is None and keys.label("ESCAPE") is None
    with pytest.raises(ValueError, match="outside the 64 slots"):
        SkillKeys({"Q": 99})


def test_headless_dataset_replay_writes_images_and_video_at_the_asked_rate(tmp_path):
    # 24 fps does not divide 60: a frame every 2.5 control steps, so 1 s of simulation (60 steps) makes 24 frames
    # and the video plays at the simulation's speed (every second or third step: taking every round(2.5) = 2nd,
    # it made 30 frames, 1.25x too slow).
    r = _play("--headless", "--play-dataset", "--hand", "rigid", "--motion-dir", "data/BallPlay-M/layup", "--steps",
              "60", "--fps", "24", "--width", "320", "--height", "180", "--save-images", str(tmp_path / "img"),
              "--video", str(tmp_path / "v.mp4"))
    assert r.returncode == 0, r.stderr
    images = sorted((tmp_path / "img").glob("*.png"))
    assert len(images) == 24
    first = imageio.imread(images[0])
    assert first.shape == (180, 320, 3) and first.std() > 10
    assert len(imageio.mimread(tmp_path / "v.mp4", memtest=False)) == 24
    assert imageio.get_reader(tmp_path / "v.mp4").get_meta_data()["fps"] == 24
    assert f"wrote {tmp_path / 'v.mp4'}: 24 frames at 24 fps" in r.stdout


def test_headless_replay_draws_the_court_on_request(tmp_path):
    for flags, folder in (((), "plain"), (("--court",), "court")):
        r = _play("--headless", "--play-dataset", "--hand", "rigid", "--motion-dir", "data/BallPlay-M/layup",
                  "--state-init", "0", "--steps", "1", "--width", "160", "--height", "90", "--save-images",
                  str(tmp_path / folder), *flags)
        assert r.returncode == 0, r.stderr
    plain, court = (imageio.imread(tmp_path / f / "00000.png").astype(int) for f in ("plain", "court"))
    changed = abs(court - plain).sum(-1) > 30
    assert changed.mean() > 0.02  # the lines and the painted key
    assert not changed[:10].any()  # the sky above the horizon stays as it was


def test_headless_policy_of_another_hand(tmp_path):
    """A policy runs on the hand its file names."""
    spec = M.load_spec("hinge1")
    path = tmp_path / "hinge1.pt"
    save_policy(SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (32,), 1.5, 2.0, "hinge1", spec.sha256), path)
    r = _play("--headless", "--checkpoint", str(path), "--state-init", "0", "--steps", "2", "--width", "160",
              "--height", "90", "--save-images", str(tmp_path / "img"), "--motion-dir", "data/BallPlay-M/layup")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "img").glob("*.png"))) == 1


def test_headless_policy_from_a_chosen_frame(tiny_policy, tmp_path):
    # Run from another folder: the key map (configs/play/keys.yaml) is found from the package.
    r = _play("--headless", "--checkpoint", str(tiny_policy), "--num-envs", "2", "--state-init", "0", "--steps", "6",
              "--width", "320", "--height", "180", "--video", str(tmp_path / "p.mp4"), "--motion-dir",
              str(ROOT / "data" / "BallPlay-M" / "layup"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "skill: 031 layup" in r.stdout
    assert len(imageio.mimread(tmp_path / "p.mp4", memtest=False)) == 3


@pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")), reason="needs Xvfb and xdotool")
def test_real_window_switches_skills_on_keys(tiny_policy):
    display = ":97"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    env["DISPLAY"] = display
    play = None
    try:
        time.sleep(1.0)
        play = subprocess.Popen([sys.executable, "play.py", "--checkpoint", str(tiny_policy), "--motion-dir",
                                 "data/BallPlay-M/layup", "--width", "640", "--height", "360"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        window = ""
        for _ in range(120):  # wait for the window (loading and compiling take a few seconds)
            r = subprocess.run(["xdotool", "search", "--name", "SkillMimic"], env=env, capture_output=True, text=True)
            window = r.stdout.split()[0] if r.stdout.split() else ""
            if window or play.poll() is not None:
                break
            time.sleep(0.5)
        assert window, play.stderr.read() if play.poll() is not None else "no window appeared"
        for key in ("w", "Left", "q"):
            subprocess.run(["xdotool", "key", "--window", window, key], env=env, check=True)
            time.sleep(0.5)
        subprocess.run(["xdotool", "mousemove", "--window", window, "320", "300", "click", "1"], env=env, check=True)
        time.sleep(0.5)
        subprocess.run(["xdotool", "key", "--window", window, "Escape"], env=env, check=True)
        out, err = play.communicate(timeout=60)
        assert play.returncode == 0, err
        lines = out.splitlines()
        assert lines[:4] == ["skill: 031 layup", "skill: 005 shot (style 1)", "skill: 011 dribble left",
                             "skill: 001 pickup"], out
        assert any(line.startswith("target: ") for line in lines)
    finally:
        if play is not None and play.poll() is None:
            play.kill()
        xvfb.kill()
