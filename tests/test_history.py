"""The policy's own past in its observation (EnvConfig.history, skillmimic/envs/history.py): off, nothing changes; on,
the observation's width and its past steps, at starts too; the policy file's record of it, from which every reader
rebuilds the observation; a policy of no history continued with one (--init-from), computing at first exactly what
it did; an --init-from of another history refused in one line (CPU, a few worlds)."""

import sys

import pytest
import torch

from falls import knock_down
from paths import DATA, ROOT
from policies import write_layup_policy
from scripts import run_python
from skillmimic import checkpoint, recipe, skills
from skillmimic.cli import parse
from skillmimic.envs.common import own_obs
from skillmimic.envs.history import History
from skillmimic.envs.imitation import EnvConfig, ImitationEnv
from skillmimic.envs.observations import OBS_DIM, SKILL_OBS_DIM, skill_obs_dim
from skillmimic.envs.switch_starts import SwitchStarts
from skillmimic.envs.task_env import TaskEnv, TaskEnvConfig
from skillmimic.errors import UserError
from skillmimic.motion import MotionSet
from skillmimic.normalizer import EmpiricalNormalization
from skillmimic.policy import POLICY_FORMAT, load_policy
from skillmimic.tasks import TASKS

sys.path.insert(0, str(ROOT))
import play  # noqa: E402
import train_llc  # noqa: E402
from skillmimic.export import policy_export  # noqa: E402
from skillmimic import evaluate, evaluate_switch  # noqa: E402


@pytest.fixture(scope="module")
def two_skills():
    return MotionSet([DATA / "layup", DATA / "run"])  # label 31 (1 clip) and 13 (3 clips)


def _env(motions, steps, n=3, **kw):
    return ImitationEnv(EnvConfig(backend="mujoco", history=History(steps), **kw), motions, n, "cpu", seed=1)


def _ref_actions(env):
    rows = env.motions.rows(env.motion_ids, env.frame_ids + 1)
    return env.motions.table.dof_pos[rows] / env.cfg.action_scale


def _past(obs: torch.Tensor, steps: int) -> torch.Tensor:
    """The history's part of observations (N, num_obs): (N, steps, OBS_DIM), oldest first."""
    return obs[:, OBS_DIM : OBS_DIM + steps * OBS_DIM].reshape(obs.shape[0], steps, OBS_DIM)


def test_no_history_is_today_s_observation_and_neither_draws_from_the_random_stream(two_skills):
    off, on = _env(two_skills, 0), _env(two_skills, 3)
    assert off.num_obs == SKILL_OBS_DIM and on.num_obs == skill_obs_dim(3) == SKILL_OBS_DIM + 3 * OBS_DIM
    obs_off, obs_on = off.reset(), on.reset()
    for k in range(3):
        assert torch.equal(obs_off, torch.cat((own_obs(off.sim), off.skill), dim=-1))  # the observation of before
        assert torch.equal(obs_on[:, :OBS_DIM], obs_off[:, :OBS_DIM])  # the present, then the skill condition last
        assert torch.equal(obs_on[:, -skills.NUM_SLOTS:], obs_off[:, -skills.NUM_SLOTS:])
        assert torch.equal(off.gen.get_state(), on.gen.get_state())
        if k == 1:  # a drawn start in each
            for env in (off, on):
                env.reset_envs(torch.tensor([1]))
        obs_off, obs_on = off.step(_ref_actions(off))[0], on.step(_ref_actions(on))[0]
    assert "history" not in off.state_dict() and "history" in on.state_dict()


def test_the_history_holds_the_past_observations_and_a_start_fills_it_with_its_own(two_skills):
    K = 3
    env = _env(two_skills, K, switch_starts=SwitchStarts(0.5))
    obs = env.reset()
    seen = [[o] for o in obs[:, :OBS_DIM]]  # per world, the present part of each observation of its episode

    def check(obs):
        for w in range(env.num_envs):
            past = ([seen[w][0]] * K + seen[w][:-1])[-K:]  # a start looks as if it had stood still
            assert torch.equal(_past(obs, K)[w], torch.stack(past)), w

    for k in range(5):
        check(obs)
        if k == 2:  # world 0 falls (the pelvis at shin height) and restarts inside the step
            knock_down(env, 0)
        obs, _, terminated, truncated, _ = env.step(_ref_actions(env))
        assert bool(terminated[0]) or k != 2
        for w in torch.nonzero(terminated | truncated).flatten().tolist():
            seen[w] = []
        for w in range(env.num_envs):
            seen[w].append(obs[w, :OBS_DIM])
    check(obs)
    # A start given from outside (the evaluation's, play.py's): filled at the next observation, the others kept.
    env.reset_envs(torch.tensor([1]), torch.tensor([0]), torch.tensor([5]))
    seen[1] = []
    obs = env.observe()
    seen[1].append(obs[1, :OBS_DIM])
    check(obs)
    assert torch.equal(env.observe(), obs)  # observing again changes nothing
    state = env.state_dict()  # a checkpoint continues the histories exactly
    after = env.step(_ref_actions(env))[0]
    env.load_state_dict(state)
    assert torch.equal(env.step(_ref_actions(env))[0], after)


def test_the_warm_start_s_demonstration_has_each_frame_s_own_state_for_its_past(layup_motions):
    env = _env(layup_motions, 2, n=32)
    obs, act = env.demonstration()
    assert obs.shape == (160, skill_obs_dim(2)) and act.shape == (160, env.num_actions)
    assert torch.equal(_past(obs, 2), obs[:, None, :OBS_DIM].expand(-1, 2, -1))


def test_seating_new_skills_reads_the_skill_columns_after_the_history():
    norm = EmpiricalNormalization(skill_obs_dim(2))
    norm.var.fill_(0.5)
    first = skill_obs_dim(2) - skills.NUM_SLOTS
    norm.var[first:] = 0.0  # every skill input constant: a policy of no skill the run has
    layer = torch.nn.Linear(skill_obs_dim(2), 4)
    before = layer.weight.detach().clone()
    assert recipe.seat_skills(norm, [layer], [13, 31]) == [13, 31]
    assert torch.nonzero(norm.mean).flatten().tolist() == [first + 13, first + 31]  # the one-hot's columns alone
    assert float(norm.var[first + 13]) == 0.25 and bool((norm.var[:first] == 0.5).all())
    assert torch.equal(layer.weight[:, :first], before[:, :first])  # the present and the history untouched


def test_the_flag_parses_and_a_negative_count_is_refused_in_one_line():
    assert parse(train_llc.Args, []).env.history == History(0)
    assert parse(train_llc.Args, ["--env.history.steps", "4"]).env.history == History(4)
    with pytest.raises(UserError, match=r"--env.history.steps -1: must be 0 \(off\) or more") as e:
        parse(train_llc.Args, ["--env.history.steps", "-1"])
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def history_policy(tmp_path_factory):
    """A skill policy of the rigid hand (train_llc.py's) observing its last 2 steps, as train_llc.py exports it."""
    rigid = MotionSet(DATA / "layup", hand="rigid")
    args = train_llc.Args(hidden=(16,), env=EnvConfig(backend="mujoco", hand="rigid", history=History(2)))
    env = ImitationEnv(args.env, rigid, 2, "cpu")
    agent = train_llc.Agent(env.num_obs, env.num_actions, args.hidden, args.log_std)
    path = tmp_path_factory.mktemp("history") / "policy.pt"
    checkpoint.save_atomic(policy_export(agent, args, env, 1, 32), path)
    return path


def test_a_policy_file_records_its_history_and_each_reader_rebuilds_its_observation(history_policy, tmp_path):
    policy = load_policy(history_policy, num_obs=skill_obs_dim)
    assert policy.history_steps == 2 and policy.num_obs == skill_obs_dim(2)
    # The evaluation (and the switch evaluation, and trace_episode: the same environment) and its start.
    cfg = evaluate.evaluation_config(policy, 5, "mujoco")
    assert cfg.history == History(2)
    env = ImitationEnv(cfg, MotionSet(DATA / "layup", hand="rigid"), 2, "cpu")
    noise = 0.02 * torch.randn(2, env.spec.num_dofs, generator=torch.Generator().manual_seed(0))
    obs = evaluate.start_at_first_frames(env, torch.zeros(2, dtype=torch.long), noise)
    assert torch.equal(_past(obs, 2), obs[:, None, :OBS_DIM].expand(-1, 2, -1))  # the noisy start's own state
    (result,) = evaluate.main(evaluate.Args(checkpoint=str(history_policy), motion_dir=str(DATA / "layup"), episodes=1,
                                            horizon=3, device="cpu", backend="mujoco"))
    assert result["label"] == "031"
    out = evaluate_switch.main(evaluate_switch.Args(checkpoint=str(history_policy), motion_dir=(str(DATA / "layup"),),
                                                    labels=(31,), episodes=1, lead=1, after=2, device="cpu",
                                                    backend="mujoco"))
    assert out["labels"] == ["031"]
    # play.py.
    player = play.make_player(play.Args(checkpoint=str(history_policy), motion_dir=str(DATA / "layup")))
    player.tick()
    player.tick()
    assert player.env.num_obs == skill_obs_dim(2) and player.env.history.steps == 2
    # A task environment driving it as a frozen skill policy: its input has the history, kept by the environment.
    inputs = []
    policy.register_forward_pre_hook(lambda module, x: inputs.append(x[0].clone()))
    cls, cfg_cls = TASKS["heading"]
    task_env = TaskEnv(TaskEnvConfig(backend="mujoco"), cls, cfg_cls(), policy,
                       MotionSet(DATA / "run", hand="rigid"), 2, "cpu", seed=0)
    task_env.reset()
    task_env.step(torch.tensor([0, 1]))  # 3 control steps
    assert [x.shape for x in inputs] == [(2, skill_obs_dim(2))] * 3
    first, last = inputs[0], inputs[-1]
    assert torch.equal(_past(first, 2), first[:, None, :OBS_DIM].expand(-1, 2, -1))
    assert torch.equal(_past(last, 2), torch.stack((inputs[0][:, :OBS_DIM], inputs[1][:, :OBS_DIM]), dim=1))
    # A file from before the history is recorded observes none; one whose size is not its history's is refused.
    ckpt = checkpoint.load(history_policy, POLICY_FORMAT)
    del ckpt["history_steps"]
    checkpoint.save_atomic(ckpt, tmp_path / "old.pt")
    with pytest.raises(checkpoint.CheckpointError, match=f"made for num_obs={skill_obs_dim(2)}, this model has "
                                                         f"num_obs={SKILL_OBS_DIM}$"):
        load_policy(tmp_path / "old.pt", num_obs=skill_obs_dim)
    shipped = load_policy(ROOT / "skillmimic" / "assets" / "llc_policy.pt", num_obs=skill_obs_dim)
    assert shipped.history_steps == 0 and shipped.num_obs == SKILL_OBS_DIM


def test_init_from_a_policy_of_another_history_is_refused_in_one_line(history_policy, tmp_path):
    fresh = train_llc.Agent(SKILL_OBS_DIM, 66, (16,), -2.9)
    message = (f"--init-from {history_policy}: the policy observes its last 2 control steps (--env.history.steps 2), "
               f"this run 0; pass --env.history.steps 2")
    with pytest.raises(UserError) as e:
        recipe.init_from(history_policy, fresh.actor, fresh.obs_norm, (16,), SKILL_OBS_DIM, "rigid",
                         torch.device("cpu"), history_steps=0)
    assert str(e.value) == message
    for steps in (1, 3):  # a history of another length than the file's, shorter or longer: not seated
        other = train_llc.Agent(skill_obs_dim(steps), 66, (16,), -2.9)
        with pytest.raises(UserError) as e:
            recipe.init_from(history_policy, other.actor, other.obs_norm, (16,), skill_obs_dim(steps), "rigid",
                             torch.device("cpu"), critic=other.critic, value_norm=other.value_norm,
                             history_steps=steps)
        assert str(e.value) == message.replace("this run 0", f"this run {steps}")
    same = train_llc.Agent(skill_obs_dim(2), 66, (16,), -2.9)
    recipe.init_from(history_policy, same.actor, same.obs_norm, (16,), skill_obs_dim(2), "rigid", torch.device("cpu"),
                     history_steps=2)
    assert torch.equal(same.actor[0].weight, load_policy(history_policy).actor[0].weight)
    r = run_python("train_llc.py", "--device", "cpu", "--num-envs", "2", "--num-steps", "4", "--num-minibatches", "2",
                   "--hidden", "16", "--iterations", "1", "--run-dir", tmp_path / "run", "--init-from", history_policy,
                   timeout=300)
    assert r.returncode == 2 and r.stderr.strip() == f"error: {message}", r.stderr
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def plain_policy(tmp_path_factory):
    """A skill policy of the rigid hand observing no past (tests/policies.py), and the agent it holds."""
    path = tmp_path_factory.mktemp("plain") / "policy.pt"
    return path, write_layup_policy(path)


def _outputs(agent, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The actor's mean action and the critic's value (denormalised) on observations obs (B, num_obs)."""
    with torch.no_grad():
        obs_n = agent.obs_norm.normalize(obs)
        return agent.actor(obs_n), agent.value_norm.denormalize(agent.value(obs_n))


def _with_past(present: torch.Tensor, past: torch.Tensor, label: int) -> torch.Tensor:
    """Observations of present (B, OBS_DIM), past (B, K, OBS_DIM) and the skill `label` -> (B, skill_obs_dim(K))."""
    return torch.cat((present, past.flatten(1), skills.one_hot(torch.full((present.shape[0],), label))), -1)


def test_a_policy_of_no_history_continues_with_one_computing_exactly_what_it_did(plain_policy, capsys):
    path, file = plain_policy
    run = train_llc.Agent(skill_obs_dim(2), file.actor[-1].out_features, (16,), -2.9)
    policy = recipe.init_from(path, run.actor, run.obs_norm, (16,), skill_obs_dim(2), "rigid", torch.device("cpu"),
                              show=True, critic=run.critic, value_norm=run.value_norm, skill_labels=[31],
                              history_steps=2)
    assert set(policy.critic_state) == {"critic", "value_norm"}
    assert capsys.readouterr().out == (f"init from {path} (actor and critic); history inputs seated for 2 past "
                                       f"control steps\n")  # the layup continued on the layup: no skill seated
    # Each past step has the present part's statistics; the present and the skill inputs keep the file's.
    for k in range(2):
        slot = slice(OBS_DIM * (k + 1), OBS_DIM * (k + 2))
        assert torch.equal(run.obs_norm.mean[slot], file.obs_norm.mean[:OBS_DIM])
        assert torch.equal(run.obs_norm.var[slot], file.obs_norm.var[:OBS_DIM])
    assert torch.equal(run.obs_norm.mean[:OBS_DIM], file.obs_norm.mean[:OBS_DIM])
    assert torch.equal(run.obs_norm.mean[-skills.NUM_SLOTS:], file.obs_norm.mean[-skills.NUM_SLOTS:])
    assert torch.equal(run.obs_norm.var[-skills.NUM_SLOTS:], file.obs_norm.var[-skills.NUM_SLOTS:])
    assert torch.equal(run.obs_norm.count, file.obs_norm.count)
    assert torch.equal(run.value_norm.mean, file.value_norm.mean) and run.value_norm.count > 0
    for net, was in ((run.actor, file.actor), (run.critic, file.critic)):  # zero on the past, the file's elsewhere
        w = net[0].weight
        assert torch.count_nonzero(w[:, OBS_DIM : 3 * OBS_DIM]) == 0
        assert torch.equal(w[:, :OBS_DIM], was[0].weight[:, :OBS_DIM])
        assert torch.equal(w[:, -skills.NUM_SLOTS:], was[0].weight[:, -skills.NUM_SLOTS:])
        for k, v in was.state_dict().items():
            if k != "0.weight":
                assert torch.equal(net.state_dict()[k], v), k
    # On any past, the actor's mean action and the critic's value are the file's on the present alone.
    gen = torch.Generator().manual_seed(1)
    present = 3.0 * torch.randn(16, OBS_DIM, generator=gen) + torch.linspace(-2, 2, OBS_DIM)
    past = 3.0 * torch.randn(16, 2, OBS_DIM, generator=gen)
    want_action, want_value = _outputs(file, _with_past(present, past[:, :0], 31))
    action, value = _outputs(run, _with_past(present, past, 31))
    assert torch.allclose(action, want_action, atol=1e-6) and torch.allclose(value, want_value, rtol=1e-6)
    # The past reaches the first layers well scaled, so its weights learn: they get gradients.
    past_n = run.obs_norm.normalize(_with_past(present, past, 31))[:, OBS_DIM : 3 * OBS_DIM]
    assert 0.5 < float(past_n.std()) < 2.0
    run.actor(run.obs_norm.normalize(_with_past(present, past, 31))).square().sum().backward()
    assert torch.count_nonzero(run.actor[0].weight.grad[:, OBS_DIM : 3 * OBS_DIM]) > 0


def test_history_and_new_skills_seated_together(plain_policy, capsys):
    """A one-skill file of no history into a run on two skills with a history: the history's columns come first,
    then the skill one-hot, last, is seated at its new place."""
    path, file = plain_policy
    run = train_llc.Agent(skill_obs_dim(3), file.actor[-1].out_features, (16,), -2.9)
    recipe.init_from(path, run.actor, run.obs_norm, (16,), skill_obs_dim(3), "rigid", torch.device("cpu"), show=True,
                     critic=run.critic, value_norm=run.value_norm, skill_labels=[13, 31], history_steps=3)
    assert capsys.readouterr().out == (f"init from {path} (actor and critic); history inputs seated for 3 past "
                                       f"control steps; skill inputs seated for 013, 031\n")
    first = skill_obs_dim(3) - skills.NUM_SLOTS
    assert first == 4 * OBS_DIM
    for lab in (13, 31):  # a class-balanced one-hot of two labels, at the one-hot's columns after the history
        assert float(run.obs_norm.mean[first + lab]) == 0.5 and float(run.obs_norm.var[first + lab]) == 0.25
    for k in range(3):
        slot = slice(OBS_DIM * (k + 1), OBS_DIM * (k + 2))
        assert torch.equal(run.obs_norm.mean[slot], file.obs_norm.mean[:OBS_DIM])
        assert torch.equal(run.obs_norm.var[slot], file.obs_norm.var[:OBS_DIM])
    for net in (run.actor, run.critic):
        assert torch.count_nonzero(net[0].weight[:, OBS_DIM:first]) == 0
        assert torch.count_nonzero(net[0].weight[:, [first + 13, first + 31]]) == 0
    gen = torch.Generator().manual_seed(2)
    present = 3.0 * torch.randn(8, OBS_DIM, generator=gen)
    past = 3.0 * torch.randn(8, 3, OBS_DIM, generator=gen)
    want_action, want_value = _outputs(file, _with_past(present, past[:, :0], 31))
    for lab in (13, 31):  # both labels do, at first, what the file did on the layup
        action, value = _outputs(run, _with_past(present, past, lab))
        assert torch.allclose(action, want_action, atol=1e-6) and torch.allclose(value, want_value, rtol=1e-6)


def test_train_llc_continues_a_policy_of_no_history_with_one(plain_policy, tmp_path):
    path, _ = plain_policy
    r = run_python("train_llc.py", "--device", "cpu", "--num-envs", "2", "--num-steps", "4", "--num-minibatches", "2",
                   "--hidden", "16", "--iterations", "1", "--run-dir", tmp_path / "run", "--init-from", path,
                   "--env.history.steps", "2", timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"init from {path} (actor and critic); history inputs seated for 2 past control steps\n" in r.stdout
    policy = load_policy(tmp_path / "run" / "policy.pt", num_obs=skill_obs_dim)
    assert policy.history_steps == 2 and policy.info["history"]["from"][0]["file"] == str(path)
