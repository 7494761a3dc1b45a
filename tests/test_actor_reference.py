"""Teachers that see the reference motion (train_llc.py --actor-reference): a run trains one and resumes it exactly;
its file is read by the evaluation and by --teachers, which feed it the reference, and refused in one line by every
reader that drives a skill by its label; a skill policy continued as a teacher acts as it did (weight 0 on the
reference), and so does a fresh one after the warm start; the flag's refusals come before any work (CPU)."""

import sys

import pytest
import torch

from paths import DATA, ROOT
from policies import write_layup_policy
from scripts import run_python
from skillmimic import checkpoint, recipe, skills
from skillmimic import model as M
from skillmimic.distill import Teachers
from skillmimic.envs.observations import OBS_DIM, SKILL_OBS_DIM, skill_obs_dim
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM
from skillmimic.errors import UserError
from skillmimic.policy import POLICY_FORMAT, SkillPolicy, load_policy, save_policy

sys.path.insert(0, str(ROOT))
import play  # noqa: E402
import train_llc  # noqa: E402

FAST = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2",
        "--device", "cpu", "--checkpoint-every", "1", "--hidden", "64", "64", "--warm-start-steps", "20",
        "--critic-warmup-iterations", "1", "--actor-prime-iterations", "0", "--critic-reference",
        "--actor-reference"]
REFUSED = ("its actor sees the reference motion (a teacher, trained with --actor-reference), so a skill label alone "
           "cannot drive it: evaluate it (skillmimic.evaluate) or let it teach (--teachers)")


def _run(*args):
    return run_python("train_llc.py", *args)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A teacher trained three iterations, and the same run stopped after two and resumed."""
    d = tmp_path_factory.mktemp("teacher")
    r = _run(*FAST, "--iterations", "3", "--run-dir", d / "a")
    assert r.returncode == 0, r.stderr
    r = _run(*FAST, "--iterations", "2", "--run-dir", d / "b")
    assert r.returncode == 0, r.stderr
    r = _run("--iterations", "3", "--device", "cpu", "--resume", d / "b" / "checkpoint.pt")
    assert r.returncode == 0, r.stderr
    return d


def test_a_teacher_run_learns_to_use_the_reference_and_resumes_exactly(teacher_run):
    ca = checkpoint.load(teacher_run / "a" / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    cb = checkpoint.load(teacher_run / "b" / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    assert ca["args"]["actor_reference"] is True and cb["iteration"] == 3
    w = ca["agent"]["actor.0.weight"]
    assert w.shape == (64, SKILL_OBS_DIM + REFERENCE_OBS_DIM)  # the observation, then the reference
    assert torch.count_nonzero(w[:, SKILL_OBS_DIM:]) > 0  # 0 after the warm start; PPO moved them
    for k, v in ca["agent"].items():
        assert torch.equal(v, cb["agent"][k]), k  # resumed = uninterrupted, to the bit (CPU)


def test_the_teacher_s_file_is_read_where_the_reference_is_and_refused_elsewhere(teacher_run):
    path = teacher_run / "a" / "policy.pt"
    assert checkpoint.load(path, POLICY_FORMAT)["actor_reference"] is True
    with pytest.raises(checkpoint.CheckpointError) as e:
        load_policy(path, num_obs=skill_obs_dim)
    assert str(e.value) == f"{path}: {REFUSED}"
    policy = load_policy(path, num_obs=skill_obs_dim, reference=REFERENCE_OBS_DIM)
    assert policy.num_reference == REFERENCE_OBS_DIM and float(policy.ref_norm.count) > 0
    with pytest.raises(ValueError, match="sees the reference motion: pass ref"):
        policy(torch.zeros(2, SKILL_OBS_DIM))
    r = run_python("-m", "skillmimic.evaluate", "--checkpoint", path, "--episodes", "1", "--horizon", "3", "--device",
                   "cpu", "--backend", "mujoco", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "031 layup" in r.stdout
    with pytest.raises(checkpoint.CheckpointError, match="a skill label alone cannot drive it"):
        play.make_player(play.Args(checkpoint=str(path), motion_dir=str(DATA / "layup")))
    # A plain run cannot continue it: one line naming the flags.
    r = _run(*FAST[:-2], "--iterations", "1", "--run-dir", teacher_run / "plain", "--init-from", path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: --init-from {path}: its actor sees the reference motion (a teacher); continue it with "
        "--actor-reference --critic-reference"]
    assert not (teacher_run / "plain" / "checkpoint.pt").exists()


def test_the_flag_without_the_privileged_critic_is_refused_before_any_work(tmp_path):
    r = _run(*FAST[:-2], "--actor-reference", "--iterations", "1", "--run-dir", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --actor-reference needs --critic-reference (the actor shares the critic's reference)"]
    assert not (tmp_path / "run").exists()


def test_a_skill_policy_continued_as_a_teacher_acts_as_it_did(tmp_path, capsys):
    file = write_layup_policy(tmp_path / "plain.pt")
    run = train_llc.Agent(SKILL_OBS_DIM, file.actor[-1].out_features, (16,), -2.9,
                          num_reference=REFERENCE_OBS_DIM, actor_reference=True)
    recipe.init_from(tmp_path / "plain.pt", run.actor, run.obs_norm, (16,), SKILL_OBS_DIM, "rigid",
                     torch.device("cpu"), show=True, critic=run.critic, value_norm=run.value_norm,
                     skill_labels=[31], ref_norm=run.ref_norm, actor_reference=True)
    assert capsys.readouterr().out == (f"init from {tmp_path / 'plain.pt'} (actor and critic); reference inputs "
                                       "seated for the critic; reference inputs seated for the actor (a teacher)\n")
    gen = torch.Generator().manual_seed(1)
    obs = torch.cat((3.0 * torch.randn(16, OBS_DIM, generator=gen), skills.one_hot(torch.full((16,), 31))), -1)
    ref = 2.0 * torch.randn(16, REFERENCE_OBS_DIM, generator=gen)
    run.ref_norm.update(ref)  # statistics of its own: the reference's inputs vary after normalisation
    with torch.no_grad():
        want = file.actor(file.obs_norm.normalize(obs))
        got = run.actor(run.actor_obs(run.obs_norm.normalize(obs), run.ref_norm.normalize(ref)))
    assert torch.allclose(got, want, atol=1e-6)
    # ... and learns to use the reference from there: its weights on it get gradients.
    run.actor(run.actor_obs(run.obs_norm.normalize(obs), run.ref_norm.normalize(ref))).square().sum().backward()
    assert torch.count_nonzero(run.actor[0].weight.grad[:, SKILL_OBS_DIM:]) > 0


def test_the_warm_start_fits_a_fresh_teacher_without_its_reference_weights():
    torch.manual_seed(0)
    agent = train_llc.Agent(12, 3, (16,), -2.9, num_reference=5, actor_reference=True)
    assert torch.count_nonzero(agent.actor[0].weight[:, 12:]) == 0  # a fresh teacher starts seated
    obs = torch.randn(256, 12)
    target = 0.5 * torch.tanh(obs @ torch.randn(12, 3))  # a function of the state alone, as the data's targets
    first = recipe.warm_start(recipe.ZeroReference(agent.actor, 5), agent.obs_norm, obs, target, 1, 1e-2, 64, 0)
    last = recipe.warm_start(recipe.ZeroReference(agent.actor, 5), agent.obs_norm, obs, target, 200, 1e-2, 64, 0)
    assert last < 0.5 * first and torch.count_nonzero(agent.actor[0].weight[:, 12:]) == 0


def _teacher_file(path, labels):
    """A rigid-hand teacher file whose actor sees the reference (16 wide) and teaches `labels`."""
    spec = M.load_spec("rigid")
    torch.manual_seed(4)
    policy = SkillPolicy(SKILL_OBS_DIM, spec.num_dofs, (16,), 1.0, 2.0, hand="rigid", model_sha256=spec.sha256,
                         num_reference=REFERENCE_OBS_DIM)
    policy.obs_norm.update(torch.randn(64, SKILL_OBS_DIM))
    policy.ref_norm.update(3.0 * torch.randn(64, REFERENCE_OBS_DIM))
    save_policy(policy, path)
    saved = checkpoint.load(path, POLICY_FORMAT)
    saved["skill_labels"] = labels
    checkpoint.save_atomic(saved, path)
    return policy


def test_a_teacher_that_sees_the_reference_teaches_with_it(tmp_path):
    teacher = _teacher_file(tmp_path / "t.pt", [31])
    ref = torch.randn(3, REFERENCE_OBS_DIM)
    teachers = Teachers((str(tmp_path / "t.pt"),), SKILL_OBS_DIM, "rigid", torch.device("cpu"), run_labels=[31],
                        action_scale=1.0, reference=lambda: ref)
    obs = torch.randn(3, SKILL_OBS_DIM)
    mu, taught = teachers.means(obs, torch.tensor([31, 31, 31]))
    assert torch.allclose(mu, teacher(obs, ref)) and taught.tolist() == [1.0, 1.0, 1.0]
    assert not torch.allclose(mu, teacher(obs, torch.zeros_like(ref)))  # the reference matters to it
    with pytest.raises(UserError, match="its actor sees 168 reference features"):  # a reader with no reference
        Teachers((str(tmp_path / "t.pt"),), SKILL_OBS_DIM, "rigid", torch.device("cpu"), run_labels=[31],
                 action_scale=1.0)
    # A reader that feeds another number of features (another version of reference_obs): one line.
    with pytest.raises(checkpoint.CheckpointError, match="its actor sees 168 reference features, this checkout's "
                       "are 10"):
        load_policy(tmp_path / "t.pt", reference=10)
    # A file that says its actor sees the reference but holds no normaliser for it: one line.
    saved = checkpoint.load(tmp_path / "t.pt", POLICY_FORMAT)
    del saved["ref_norm"]
    checkpoint.save_atomic(saved, tmp_path / "broken.pt")
    with pytest.raises(checkpoint.CheckpointError, match="sees the reference motion but it has no ref_norm"):
        load_policy(tmp_path / "broken.pt", reference=REFERENCE_OBS_DIM)
