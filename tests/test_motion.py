import os
import pickle
import zipfile

import pytest
import torch

from skillmimic import model as M
from skillmimic.motion import MotionError, MotionSet, find_clips, load_clip, skill_label
from paths import DATA

LAYUP = next((DATA / "layup").glob("*.pt"))


def _clip(T=5):
    x = torch.zeros(T, 337)
    x[:, 2] = 0.9
    x[:, 324:327] = torch.tensor([0.5, 0.0, 0.12])
    return x


def test_shipped_data_is_complete_and_saved_from_cuda():
    files = find_clips(DATA)
    assert len(files) == 101
    assert "Apache License" in (DATA / "LICENSE").read_text() and "SkillMimic" in (DATA / "README.md").read_text()
    # The clips were written on a GPU: their storages say so, and they still load on a CPU-only machine.
    with zipfile.ZipFile(LAYUP) as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        assert b"cuda" in z.read(pkl)
    x = load_clip(LAYUP)
    assert x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[1] == 337


def test_labels_from_file_names():
    assert skill_label("data/x/031_layup.pt") == 31
    ms = MotionSet([DATA / "layup", DATA / "run"])
    assert ms.labels.tolist() == [31, 13, 13, 13]
    with pytest.raises(MotionError, match="three-digit skill label"):
        skill_label("layup.pt")


@pytest.mark.parametrize(
    "name, payload, message",
    [
        ("001_shape.pt", torch.zeros(10, 336), r"shape \[10, 336\], expected \[T, 337\]"),
        ("001_dims.pt", torch.zeros(337), r"shape \[337\]"),
        ("001_short.pt", torch.zeros(1, 337), "1 frame"),
        ("001_int.pt", torch.zeros(4, 337, dtype=torch.int64), "dtype torch.int64"),
        ("001_dict.pt", {"frames": torch.zeros(4, 337)}, "holds a dict"),
    ],
)
def test_bad_contents_are_named(tmp_path, name, payload, message):
    path = tmp_path / name
    torch.save(payload, path)
    with pytest.raises(MotionError, match=message) as e:
        load_clip(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_nan_is_located(tmp_path):
    x = _clip()
    x[3, 200] = float("nan")
    torch.save(x, tmp_path / "001_nan.pt")
    with pytest.raises(MotionError, match="frame 3, column 200"):
        load_clip(tmp_path / "001_nan.pt")


def test_truncated_file(tmp_path):
    data = LAYUP.read_bytes()
    path = tmp_path / "031_truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MotionError, match="cut short or damaged") as e:
        load_clip(path)
    assert str(path) in str(e.value)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "001_evil.pt"
    with open(path, "wb") as f:
        pickle.dump(_RunsCode(marker), f)
    with pytest.raises(MotionError, match="refused"):
        load_clip(path)
    assert not marker.exists()
    # The same through torch.save's zip format.
    path2 = tmp_path / "001_evil2.pt"
    torch.save(_RunsCode(marker), path2)
    with pytest.raises(MotionError, match="refused"):
        load_clip(path2)
    assert not marker.exists()


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(MotionError, match="no such file or folder"):
        find_clips(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MotionError, match="no .pt clips"):
        find_clips(tmp_path / "empty")
    with pytest.raises(MotionError, match="empty list"):
        find_clips([])


def test_one_bad_clip_in_a_folder_names_that_clip(tmp_path):
    torch.save(_clip(), tmp_path / "001_good.pt")
    (tmp_path / "sub").mkdir()
    torch.save(torch.zeros(3, 5), tmp_path / "sub" / "002_bad.pt")
    with pytest.raises(MotionError, match="002_bad.pt"):
        MotionSet(tmp_path)


def test_gather_matches_per_clip_indexing(all_motions):
    ms = all_motions
    assert ms.num_motions == 101 and ms.num_frames == 14826
    motion_ids = torch.tensor([0, 50, 100, 7])
    frame_ids = torch.tensor([0, 3, 10_000, -4])  # past the end and negative are clamped
    f = ms.frames(motion_ids, frame_ids)
    assert f.body_pos.shape == (4, 53, 3) and f.dof_pos.shape == (4, 156) and f.contact.shape == (4,)
    for k, (m, t) in enumerate(zip(motion_ids.tolist(), frame_ids.tolist())):
        x = load_clip(ms.files[m])
        t = min(max(t, 0), x.shape[0] - 1)
        assert torch.allclose(f.root_pos[k], x[t, 0:3])
        # The ball as the clip's own table has it (moved out of the hands and the floor by default).
        assert torch.allclose(f.ball_pos[k], MotionSet(ms.files[m]).table.ball_pos[t])
        assert torch.allclose(f.body_pos_recorded[k], x[t, 165:324].reshape(53, 3))
        assert float(f.contact[k]) == float(x[t, 336])


def test_velocities_by_central_differences(tmp_path):
    T = 6
    x = _clip(T)
    t = torch.arange(T, dtype=torch.float32) / 60.0
    x[:, 0] = 2.0 * t  # root moves at 2 m/s along x
    x[:, 5] = 3.0 * t  # and turns at 3 rad/s about z
    x[:, 324] = 0.5 - 4.0 * t  # the ball moves at -4 m/s
    x[:, 9 + 3 * 5 + 1] = 1.5 * t  # R_Hip's y hinge turns at 1.5 rad/s (joint 5 of 52)
    torch.save(x, tmp_path / "013_synthetic.pt")
    f = MotionSet(tmp_path).table
    assert torch.allclose(f.root_lin_vel[:, 0], torch.full((T,), 2.0), atol=1e-4)
    assert torch.allclose(f.root_ang_vel[:, 2], torch.full((T,), 3.0), atol=1e-4)
    assert torch.allclose(f.ball_vel[:, 0], torch.full((T,), -4.0), atol=1e-4)
    assert torch.allclose(f.dof_vel[:, 3 * 5 + 1], torch.full((T,), 1.5), atol=1e-4)


def test_state_reproduces_the_reference_pose(layup_motions):
    ms = layup_motions
    ids = torch.tensor([0, 0, 0])
    frames = torch.tensor([0, 50, 120])
    qpos, qvel = ms.state(ids, frames)
    assert qpos.shape == (3, 170) and qvel.shape == (3, 168) and ms.spec.hand == "full"
    pos, quat = M.forward_kinematics(M.load_model(), qpos)
    f = ms.frames(ids, frames)
    assert torch.allclose(pos.float(), f.body_pos, atol=1e-5)
    assert torch.allclose(qpos[:, ms.spec.ball_qpos][:, :3], f.ball_pos)


def test_another_hand_keeps_its_hinges_of_the_same_decomposition(layup_motions):
    rigid = MotionSet(DATA / "layup", hand="hinge1")
    spec = rigid.spec
    assert rigid.table.dof_pos.shape == (layup_motions.num_frames, 100) == rigid.table.dof_vel.shape
    assert torch.equal(rigid.table.dof_pos, layup_motions.table.dof_pos[:, spec.dof_index])
    assert torch.allclose(rigid.table.dof_vel, layup_motions.table.dof_vel[:, spec.dof_index])
    qpos, qvel = rigid.state(torch.zeros(2, dtype=torch.long), torch.tensor([0, 80]))
    assert qpos.shape == (2, 114) and qvel.shape == (2, 112)
    pos, _ = M.forward_kinematics(M.load_model("hinge1"), qpos)
    assert torch.allclose(pos.float(), rigid.table.body_pos[[0, 80]], atol=1e-5)
    # The data's fingers are flat in the layup: every body is where the full hand puts it.
    assert torch.allclose(rigid.table.body_pos, layup_motions.table.body_pos, atol=1e-5)


def test_motion_set_on_a_device(layup_motions):
    ms = MotionSet(DATA / "layup", device="cpu")
    assert ms.table.dof_pos.device.type == "cpu"
    assert torch.equal(ms.table.dof_pos, layup_motions.table.dof_pos)


def test_clips_are_derived_on_one_cpu_thread_and_the_count_restored(monkeypatch):
    """Deriving the clips is many small operations: on one thread (several processes side by side, each with a
    thread per core, stall one another: skillmimic.device.cpu_threads), with torch's own count back afterwards."""
    seen = []
    derive = MotionSet._derive

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return derive(*a, **k)

    monkeypatch.setattr(MotionSet, "_derive", staticmethod(spy))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        MotionSet(DATA / "layup", hand="rigid")
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
