"""Offline distillation (python -m skillmimic.offline_distill): the states it collects and their labels, a fit that
brings the student to its teachers, the file it writes (which the evaluation and train_llc.py read), the refusals."""

import dataclasses
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from paths import DATA, ROOT
from scripts import run_python

sys.path.insert(0, str(ROOT))
from skillmimic import checkpoint, skills  # noqa: E402
from skillmimic import model as M  # noqa: E402
from skillmimic.distill import Teachers  # noqa: E402
from skillmimic.envs.history import History  # noqa: E402
from skillmimic.envs.imitation import EnvConfig, ImitationEnv  # noqa: E402
from skillmimic.envs.label_sampling import LabelSampling  # noqa: E402
from skillmimic.envs.observations import OBS_DIM, SKILL_OBS_DIM, skill_obs_dim  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402
from skillmimic.motion import MotionSet  # noqa: E402
from skillmimic.normalizer import EmpiricalNormalization  # noqa: E402
from skillmimic.offline_distill import Args, collect, fit, main  # noqa: E402
from skillmimic.policy import POLICY_FORMAT, load_policy, mlp, policy_file  # noqa: E402
from skillmimic.recipe import training_env  # noqa: E402

SCALE = EnvConfig().action_scale


def _policy(path, labels, seed, **extra):
    """A rigid-hand policy file of a 32-wide actor playing `labels`, its normaliser fitted to random states."""
    spec = M.load_spec("rigid")
    torch.manual_seed(seed)
    actor, norm = mlp(SKILL_OBS_DIM, (32,), spec.num_dofs, out_std=0.3), EmpiricalNormalization(SKILL_OBS_DIM)
    norm.update(torch.randn(64, SKILL_OBS_DIM))
    checkpoint.save_atomic(policy_file(actor, norm, SKILL_OBS_DIM, spec.num_dofs, (32,), SCALE, 2.0, hand="rigid",
                                       model_sha256=spec.sha256, skill_labels=labels, iteration=7, samples=700,
                                       **extra), path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two skills' clips (dribble forward 013, layup 031), a student of both and a teacher of each."""
    top = tmp_path_factory.mktemp("offline")
    for name in ("run", "layup"):
        shutil.copytree(DATA / name, top / "clips" / name)
    _policy(top / "student.pt", [13, 31], seed=0)
    _policy(top / "dribble.pt", [13], seed=1)
    _policy(top / "layup.pt", [31], seed=2)
    return top


def _env_and_teachers(files, n, seed):
    """The collection's environment of the two skills (n worlds, labels drawn evenly) and their two teachers."""
    motions = MotionSet(files / "clips", hand="rigid")
    env = ImitationEnv(EnvConfig(backend="mujoco", hand="rigid", label_sampling=LabelSampling("samples")), motions,
                       n, "cpu", seed=seed)
    teachers = Teachers((str(files / "dribble.pt"), str(files / "layup.pt")), env.num_obs, "rigid",
                        torch.device("cpu"), run_labels=[13, 31], action_scale=SCALE)
    return env, teachers


def test_collect_keeps_each_skills_states_with_its_teachers_means(files):
    env, teachers = _env_and_teachers(files, 6, seed=0)
    states = collect(env, teachers, 25, 0.05, torch.Generator().manual_seed(0), show=False)
    assert torch.bincount(states.label, minlength=skills.NUM_SLOTS)[[13, 31]].tolist() == [25, 25]
    assert len(states.obs) == 50 and states.steps >= 50 // 6 * 6
    assert torch.equal(states.obs[:, SKILL_OBS_DIM - skills.NUM_SLOTS:].argmax(-1), states.label)  # the one-hot
    mu, _ = teachers.means(states.obs, states.label)
    assert torch.allclose(mu, states.mu, atol=1e-6)  # each state's label is its own teacher's mean there


def test_fit_brings_the_student_to_its_teachers(files):
    env, teachers = _env_and_teachers(files, 8, seed=1)
    states = collect(env, teachers, 200, 0.05, torch.Generator().manual_seed(1), show=False)
    student = load_policy(files / "student.pt", "cpu")
    before = [p.detach().clone() for p in student.actor.parameters()]
    curve = fit(student, states, epochs=30, batch=64, lr=3e-3, gen=torch.Generator().manual_seed(1), show=False)
    assert len(curve) == 31 and set(curve[0]) == {13, 31}
    for lab in (13, 31):  # the held-out distance falls by far
        assert curve[-1][lab] < 0.3 * curve[0][lab], (lab, curve[0][lab], curve[-1][lab])
    assert torch.equal(student.obs_norm.mean, load_policy(files / "student.pt", "cpu").obs_norm.mean)  # kept
    assert any(not torch.equal(a, b) for a, b in zip(before, student.actor.parameters()))
    asked = iter([False, True])  # a stop asked for during the second epoch: the fit ends after it
    assert len(fit(student, states, 30, 64, 3e-3, torch.Generator().manual_seed(1), False, lambda: next(asked))) == 3


def test_the_command_writes_a_policy_file_the_evaluation_reads(files, tmp_path):
    out = tmp_path / "merged" / "policy.pt"
    args = Args(init_from=str(files / "student.pt"), teachers=(str(files / "dribble.pt"), str(files / "layup.pt")),
                out=str(out), motion_dir=str(files / "clips"), num_envs=4, states_per_skill=40, epochs=2, batch=32,
                device="cpu")
    held = main(args)
    assert set(held) == {13, 31}
    ckpt = checkpoint.load(out, POLICY_FORMAT)
    init = checkpoint.load(files / "student.pt", POLICY_FORMAT)
    info = ckpt["offline_distill"]
    assert info["teachers"] == list(args.teachers) and info["states_per_skill"] == 40 and info["epochs"] == 2
    assert info["epochs_done"] == 2
    assert set(info["held_out"]) == {"013", "031"} and info["held_out"]["013"] == pytest.approx(held[13])
    assert ckpt["skill_labels"] == [13, 31] and ckpt["iteration"] == 0 and ckpt["samples"] == info["steps"] > 0
    assert ckpt["history"]["samples"] == 700 + info["steps"]  # the student's own 700, then the collection's
    assert ckpt["history"]["from"][-1]["file"] == str(files / "student.pt")
    assert torch.equal(ckpt["obs_norm"]["mean"], init["obs_norm"]["mean"])
    assert any(not torch.equal(ckpt["actor"][k], init["actor"][k]) for k in init["actor"])
    r = run_python("-m", "skillmimic.evaluate", "--checkpoint", out, "--motion-dir", files / "clips" / "layup",
                   "--episodes", "1", "--horizon", "5", "--backend", "mujoco", "--device", "cpu", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "031 layup" in r.stdout


def test_saved_states_fit_again_without_simulating(files, tmp_path):
    base = dict(teachers=(str(files / "dribble.pt"), str(files / "layup.pt")), motion_dir=str(files / "clips"),
                num_envs=4, states_per_skill=30, epochs=1, batch=16, device="cpu")
    first, again = tmp_path / "first.pt", tmp_path / "again.pt"
    main(Args(init_from=str(files / "student.pt"), out=str(first), save_states=str(tmp_path / "s.pt"), **base))
    held = main(Args(init_from=str(first), out=str(again), states=str(tmp_path / "s.pt"), **base))
    saved = checkpoint.load(tmp_path / "s.pt", "skillmimic-distill-states/1")
    assert saved["obs"].shape == (60, SKILL_OBS_DIM) and saved["skill_labels"] == [13, 31]
    one, two = checkpoint.load(first, POLICY_FORMAT), checkpoint.load(again, POLICY_FORMAT)
    assert two["offline_distill"]["steps"] == 0 and two["offline_distill"]["states"] == str(tmp_path / "s.pt")
    assert two["history"]["samples"] == one["history"]["samples"]  # the states' steps are counted once
    assert set(held) == {13, 31}
    with pytest.raises(UserError, match=r"^--states: .*s.pt: labelled by .*dribble.pt .*layup.pt, not by the "
                                        r"--teachers named$"):
        main(Args(init_from=str(first), out=str(again), states=str(tmp_path / "s.pt"),
                  **{**base, "teachers": (str(files / "layup.pt"), str(files / "dribble.pt"))}))
    with pytest.raises(UserError, match=r"^--save-states: the states are read from --states; pass one of the two$"):
        main(Args(init_from=str(first), out=str(again), states=str(tmp_path / "s.pt"),
                  save_states=str(tmp_path / "t.pt"), **base))


def test_a_time_limit_ends_the_fit_after_an_epoch_and_writes_the_student(files, tmp_path):
    """SIGTERM (timeout -s TERM, as tools/layup_continue.sh gives an arm) during the fit: the epoch ends, the student
    is written, the command exits 0."""
    out = tmp_path / "o.pt"
    proc = subprocess.Popen([sys.executable, "-m", "skillmimic.offline_distill", "--init-from",
                             str(files / "student.pt"), "--teachers", str(files / "dribble.pt"),
                             str(files / "layup.pt"), "--motion-dir", str(files / "clips"), "--num-envs", "4",
                             "--states-per-skill", "20", "--epochs", "1000000", "--batch", "8", "--device", "cpu",
                             "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("fit: epoch 2/"):
            proc.send_signal(signal.SIGTERM)
            break
    rest, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "stop requested" in err and "fit: stopped after epoch" in rest
    done = checkpoint.load(out, POLICY_FORMAT)["offline_distill"]["epochs_done"]
    assert 2 <= done < 1000000


def test_bad_input_is_refused_in_one_line_before_any_work(files, tmp_path):
    teachers = (str(files / "dribble.pt"),)
    base = dict(init_from=str(files / "student.pt"), teachers=teachers, out=str(tmp_path / "o.pt"),
                motion_dir=str(files / "clips"), num_envs=2, states_per_skill=2, epochs=1, device="cpu")
    cases = [
        (dict(), r"^--teachers: no file teaches 031 of --motion-dir .*clips$"),
        (dict(teachers=()), r"^--teachers: name at least one policy file$"),
        (dict(out=str(files / "student.pt")), r"^--out .*student.pt: is --init-from's file; name another"),
        (dict(action_noise=-0.1), r"^--action-noise -0.1: must be a finite std >= 0$"),
        (dict(learning_rate=0.0), r"^--learning-rate 0.0: must be a finite step > 0$"),
        (dict(states_per_skill=0), r"^--states-per-skill 0: must be at least 1$"),
        (dict(init_from=str(tmp_path / "none.pt")), r"^--init-from: .*none.pt"),
    ]
    for change, message in cases:
        with pytest.raises(UserError, match=message) as e:
            main(Args(**{**base, **change}))
        assert "\n" not in str(e.value)
    assert not (tmp_path / "o.pt").exists()
    r = run_python("-m", "skillmimic.offline_distill", "--init-from", files / "student.pt", "--teachers", *teachers,
                   "--motion-dir", files / "clips", "--out", tmp_path / "o.pt", "--device", "cpu", timeout=300)
    expected = f"error: --teachers: no file teaches 031 of --motion-dir {files / 'clips'}"
    assert r.returncode == 2 and r.stderr.strip() == expected


def test_skill_heads_start_as_the_students_layer_and_are_written(files, tmp_path):
    """--skill-heads: the student's output layer becomes one per skill, seated from its file (with 0 epochs the
    heads are copies of it: the held-out distances before the fit are the plain student's), and the file written
    records them; the evaluation builds them from it."""
    base = dict(init_from=str(files / "student.pt"), teachers=(str(files / "dribble.pt"), str(files / "layup.pt")),
                motion_dir=str(files / "clips"), num_envs=4, states_per_skill=30, batch=16, device="cpu")
    main(Args(out=str(tmp_path / "plain.pt"), save_states=str(tmp_path / "s.pt"), epochs=0, **base))
    main(Args(out=str(tmp_path / "heads0.pt"), states=str(tmp_path / "s.pt"), epochs=0, skill_heads=True, **base))
    plain, heads0 = (checkpoint.load(tmp_path / f, POLICY_FORMAT) for f in ("plain.pt", "heads0.pt"))
    assert "skill_heads" not in plain and heads0["skill_heads"] == [13, 31]
    for skill, d in plain["offline_distill"]["held_out_before"].items():
        assert heads0["offline_distill"]["held_out_before"][skill] == pytest.approx(d, rel=1e-5)
    assert heads0["actor"]["2.weight"].shape == (3, 66, 32)  # 013, 031 and the shared head, each the file's layer
    for head in range(3):
        assert torch.equal(heads0["actor"]["2.weight"][head], plain["actor"]["2.weight"])
    main(Args(out=str(tmp_path / "heads.pt"), states=str(tmp_path / "s.pt"), epochs=2, skill_heads=True, **base))
    student = load_policy(tmp_path / "heads.pt")
    assert student.actor.labels == [13, 31]
    r = run_python("-m", "skillmimic.evaluate", "--checkpoint", tmp_path / "heads.pt", "--motion-dir",
                   files / "clips" / "layup", "--episodes", "1", "--horizon", "5", "--backend", "mujoco", "--device",
                   "cpu", timeout=300)
    assert r.returncode == 0 and "031 layup" in r.stdout, r.stderr


def test_a_student_without_a_past_is_seated_for_a_history_and_written_with_it(files, tmp_path):
    """--env.history.steps K for a student that observes no past: its inputs are seated as train_llc.py --init-from
    seats them (with 0 epochs it computes what its file did, whatever the past holds), the states are collected
    with the history, and the file written observes it (the evaluation's reader takes it); another K than a
    student's own is refused in one line."""
    base = dict(teachers=(str(files / "dribble.pt"), str(files / "layup.pt")), motion_dir=str(files / "clips"),
                num_envs=4, states_per_skill=30, batch=16, device="cpu")
    env = dataclasses.replace(training_env(), history=History(2))
    wide = tmp_path / "wide0.pt"
    main(Args(init_from=str(files / "student.pt"), out=str(wide), env=env, epochs=0,
              save_states=str(tmp_path / "s.pt"), **base))
    saved = checkpoint.load(tmp_path / "s.pt", "skillmimic-distill-states/1")
    num_obs = skill_obs_dim(2)
    assert saved["obs"].shape == (60, num_obs) and num_obs == SKILL_OBS_DIM + 2 * OBS_DIM
    ckpt = checkpoint.load(wide, POLICY_FORMAT)
    assert ckpt["num_obs"] == num_obs and ckpt["history_steps"] == 2 and ckpt["obs_norm"]["mean"].shape == (num_obs,)
    seated, plain = load_policy(wide, num_obs=skill_obs_dim), load_policy(files / "student.pt")
    present = SKILL_OBS_DIM - skills.NUM_SLOTS
    own = torch.cat((saved["obs"][:, :present], saved["obs"][:, present + 2 * OBS_DIM:]), dim=-1)
    assert torch.allclose(seated(saved["obs"]), plain(own), atol=1e-6)  # the same actions: the past weighs 0
    held = main(Args(init_from=str(files / "student.pt"), out=str(tmp_path / "wide.pt"), env=env, epochs=2,
                     states=str(tmp_path / "s.pt"), **base))
    assert set(held) == {13, 31}
    assert len(checkpoint.load(tmp_path / "wide.pt", POLICY_FORMAT)["offline_distill"]["held_out_epochs"]) == 3
    with pytest.raises(UserError, match=r"^--env.history.steps 3: the student observes its last 2 control steps; "
                                        r"pass --env.history.steps 2 \(or 0: the student's\)$"):
        main(Args(init_from=str(wide), out=str(tmp_path / "w3.pt"), epochs=0,
                  env=dataclasses.replace(training_env(), history=History(3)), **base))
