"""The policy's own past in its observation (EnvConfig.history, skillmimic/envs/history.py): off, nothing changes; on,
the observation's width and its past steps, at starts too; the policy file's record of it, from which every reader
rebuilds the observation; an --init-from of another history refused in one line (CPU, a few worlds)."""

import subprocess
import sys

import pytest
import torch

from paths import DATA, ROOT
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
            qpos = env.sim.qpos.clone()
            qpos[0, 2] = 0.15
            env.sim.qpos.copy_(qpos)
            env.sim.forward()
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
    checkpoint.save_atomic(train_llc.policy_export(agent, args, env, 1, 32), path)
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
    same = train_llc.Agent(skill_obs_dim(2), 66, (16,), -2.9)
    recipe.init_from(history_policy, same.actor, same.obs_norm, (16,), skill_obs_dim(2), "rigid", torch.device("cpu"),
                     history_steps=2)
    assert torch.equal(same.actor[0].weight, load_policy(history_policy).actor[0].weight)
    r = subprocess.run([sys.executable, "train_llc.py", "--device", "cpu", "--num-envs", "2", "--num-steps", "4",
                        "--num-minibatches", "2", "--hidden", "16", "--iterations", "1", "--run-dir",
                        str(tmp_path / "run"), "--init-from", str(history_policy)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip() == f"error: {message}", r.stderr
    assert not (tmp_path / "run").exists()
