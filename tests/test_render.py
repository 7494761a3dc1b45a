"""Offscreen pictures (EGL on this CPU machine) and frames-to-video."""

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from scripts import run_python
from skillmimic.errors import UserError
from skillmimic.viz.render import SceneRenderer, write_text
from skillmimic.viz.video import frames_due, write_video


@pytest.fixture(scope="module")
def renderer():
    r = SceneRenderer(width=320, height=240)
    yield r
    r.close()


def _green(img):
    return int(((img[..., 1] > 150) & (img[..., 0] < 100) & (img[..., 2] < 100)).sum())


def test_renders_worlds_side_by_side(renderer, layup_motions):
    qpos, _ = layup_motions.state(torch.zeros(2, dtype=torch.long), torch.tensor([0, 60]))
    one = renderer.render(qpos[:1])
    two = renderer.render(qpos, touched=torch.tensor([True, True]))
    assert one.shape == two.shape == (240, 320, 3) and one.dtype == np.uint8
    assert one.std() > 10  # not blank
    assert not np.array_equal(one, two)
    assert _green(two) > 20 and _green(one) == 0  # the touched balls turn green


def test_text_overlay():
    img = np.full((60, 200, 3), 128, np.uint8)
    out = write_text(img, "W shot")
    assert out.shape == img.shape and not np.array_equal(out[:30, :80], img[:30, :80])
    assert np.array_equal(out[40:], img[40:])


def test_video_reads_back_with_its_frame_count(tmp_path):
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(12)]
    assert write_video(frames, tmp_path / "a.mp4", fps=12) == 12
    assert len(imageio.mimread(tmp_path / "a.mp4", memtest=False)) == 12
    for name in ("none.mp4", "none.gif"):  # no frames: said, and no file claimed
        with pytest.raises(UserError, match="no frames to write"):
            write_video([], tmp_path / name)
        assert not (tmp_path / name).exists()


def test_frames_are_due_at_the_asked_rate_of_simulated_time():
    for fps in (60, 30, 24, 12, 7.5):
        due = [frames_due(step, fps) for step in range(600)]  # 10 s at 60 steps a second
        assert due[0] == 1 and due[-1] == round(10 * fps) and all(b - a in (0, 1) for a, b in zip(due, due[1:]))


def test_video_command_from_a_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(7):
        imageio.imwrite(folder / f"{i:04d}.png", np.full((32, 32, 3), 30 * i, np.uint8))
    r = run_python("-m", "skillmimic.viz.video", folder, tmp_path / "v.mp4", "--fps", "7", timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(imageio.mimread(tmp_path / "v.mp4", memtest=False)) == 7
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_python("-m", "skillmimic.viz.video", empty, tmp_path / "w.mp4", timeout=120)
    assert r.returncode != 0 and "no .png or .jpg frames" in r.stderr


def test_gif_loops_with_its_frame_count_and_rate(tmp_path):
    from PIL import Image

    frames = [np.full((24, 32, 3), 20 * i, dtype=np.uint8) for i in range(6)]
    assert write_video(frames, tmp_path / "a.gif", fps=10) == 6
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 6 and im.info["loop"] == 0 and im.info["duration"] == 100
        im.seek(5)
        assert abs(int(np.asarray(im.convert("RGB"))[0, 0, 0]) - 100) <= 8  # the last frame's grey, kept
