"""The privileged critic (train_llc.py --critic-reference, skillmimic/envs/reference_obs.py): the reference features'
size, their invariance to moving or turning the whole scene, their values at a reference-state start and past the
clip, switch episodes and restarted worlds; a run with the flag, resumed exactly; its policy file read by every
reader of the actor; --init-from seating a plain critic (its values kept), loading a privileged one as it is, and a
plain run leaving a privileged one behind (CPU, a few worlds)."""

import sys

import pytest
import torch

from falls import knock_down
from paths import DATA, ROOT
from policies import write_layup_policy
from scripts import run_python
from skillmimic import checkpoint, recipe, rotations, skills
from skillmimic import model as M
from skillmimic.envs.imitation import EnvConfig, ImitationEnv
from skillmimic.envs.observations import OBS_DIM, SKILL_OBS_DIM, skill_obs_dim
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM, clip_phase, reference_obs
from skillmimic.envs.switch_starts import Alignment, SwitchStarts
from skillmimic.motion import MotionSet
from skillmimic.policy import POLICY_FORMAT, load_policy

sys.path.insert(0, str(ROOT))
import play  # noqa: E402
import train_llc  # noqa: E402
from skillmimic.export import policy_export  # noqa: E402

FAST = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2",
        "--device", "cpu", "--checkpoint-every", "1", "--hidden", "64", "64", "--warm-start-steps", "20",
        "--critic-warmup-iterations", "1", "--actor-prime-iterations", "0"]


def _run(*args):
    return run_python("train_llc.py", *args)


def _env(motions, n=3, **kw):
    return ImitationEnv(EnvConfig(backend="mujoco", **kw), motions, n, "cpu", seed=1)


def _ref_actions(env):
    rows = env.motions.rows(env.motion_ids, env.frame_ids + 1)
    return env.motions.table.dof_pos[rows] / env.cfg.action_scale


def _local(points: torch.Tensor, root_pos: torch.Tensor, root_quat: torch.Tensor) -> torch.Tensor:
    """World points (N, K, 3) seen from a pelvis (N, 3), (N, 4), in its heading frame -> (N, K, 3)."""
    inv = rotations.heading_inverse(root_quat)[:, None].expand(-1, points.shape[1], 4)
    return rotations.quat_rotate(inv, points - root_pos[:, None])


def test_the_features_have_their_size_and_stay_when_the_scene_is_moved_and_turned():
    gen = torch.Generator().manual_seed(0)
    n = 5
    root_pos = torch.randn(n, 3, generator=gen)
    root_quat = torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1)
    ref_body = torch.randn(n, M.NUM_BODIES, 3, generator=gen)
    ref_ball, ref_ball_vel = torch.randn(n, 3, generator=gen), torch.randn(n, 3, generator=gen)
    contact = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    phase = clip_phase(torch.tensor([1, 80, 160, 161, 170]), torch.full((n,), 161), 20)
    feats = reference_obs(root_pos, root_quat, ref_body, ref_ball, ref_ball_vel, contact, phase)
    assert feats.shape == (n, REFERENCE_OBS_DIM) and REFERENCE_OBS_DIM == 168
    # The whole scene (the humanoid and the reference) turned about the vertical and moved across the floor.
    turn = rotations.yaw_quat(torch.tensor([0.3, -2.0, 1.0, 3.0, -0.7]))
    shift = torch.randn(n, 3, generator=gen) * torch.tensor([5.0, 5.0, 0.0])
    al = Alignment(turn, shift)
    moved = reference_obs(al.point(root_pos), al.orientation(root_quat), al.point(ref_body), al.point(ref_ball),
                          al.vector(ref_ball_vel), contact, phase)
    assert torch.allclose(moved, feats, atol=1e-5)
    # The layout: bodies, the ball, its velocity, the contact label, the phase last.
    assert torch.allclose(feats[:, :159].reshape(n, M.NUM_BODIES, 3), _local(ref_body, root_pos, root_quat))
    assert torch.allclose(feats[:, 159:162], _local(ref_ball[:, None], root_pos, root_quat)[:, 0])
    assert torch.equal(feats[:, 165], contact) and torch.equal(feats[:, 166:], phase)


def test_clip_phase_runs_over_the_clip_then_over_the_steps_after_it():
    lengths = torch.full((5,), 161)
    phase = clip_phase(torch.tensor([0, 80, 160, 165, 200]), lengths, 10)
    assert torch.allclose(phase, torch.tensor([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [1.0, 0.5], [1.0, 1.0]]))
    assert torch.equal(clip_phase(torch.tensor([161, 170]), lengths[:2], 0)[:, 1], torch.zeros(2))  # none after it


def test_at_a_reference_state_start_the_features_are_the_next_frame_seen_from_the_pelvis(layup_motions):
    env = _env(layup_motions, n=3, steps_after_clip=5)
    frames = torch.tensor([0, 50, 159])  # 159: the next frame is the clip's last (160)
    env.reset_envs(torch.arange(3), torch.zeros(3, dtype=torch.long), frames)
    state = env.gen.get_state()
    feats = env.reference_obs()
    assert feats.shape == (3, REFERENCE_OBS_DIM) and torch.equal(env.gen.get_state(), state)  # nothing drawn
    t = layup_motions.table
    now, nxt = frames, frames + 1
    # The humanoid stands in frame f's state: frame f + 1's bodies seen from f's pelvis.
    want = _local(t.body_pos[nxt], t.body_pos[now, 0], t.body_quat[now, 0])
    bodies = feats[:, :159].reshape(3, M.NUM_BODIES, 3)
    assert torch.allclose(bodies, want, atol=1e-4)
    # ... which are close to the reference's own bodies seen from its own pelvis at f + 1 (one frame apart).
    own = _local(t.body_pos[nxt], t.body_pos[nxt, 0], t.body_quat[nxt, 0])
    assert float((bodies - own).norm(dim=-1).max()) < 0.1
    ball = _local(t.ball_pos[nxt][:, None], t.body_pos[now, 0], t.body_quat[now, 0])[:, 0]
    assert torch.allclose(feats[:, 159:162], ball, atol=1e-4)
    assert torch.allclose(feats[:, 162:165].norm(dim=-1), t.ball_vel[nxt].norm(dim=-1), atol=1e-4)  # turned only
    assert torch.equal(feats[:, 165], t.contact[nxt])
    assert torch.allclose(feats[:, 166], nxt / 160.0) and torch.equal(feats[:, 167], torch.zeros(3))


def test_past_the_clip_the_phase_stays_at_its_end_and_the_steps_after_it_count(layup_motions):
    env = _env(layup_motions, n=1, steps_after_clip=5, auto_reset=False)
    env.reset_envs(torch.arange(1), torch.zeros(1, dtype=torch.long), torch.tensor([158]))
    hold = env.motions.table.dof_pos[-1:] / env.cfg.action_scale
    seen = [env.reference_obs()[0, 166:]]
    for _ in range(4):
        env.step(hold)
        seen.append(env.reference_obs()[0, 166:])
    want = torch.tensor([[159 / 160, 0.0], [1.0, 0.0], [1.0, 0.2], [1.0, 0.4], [1.0, 0.6]])
    assert torch.allclose(torch.stack(seen), want)


def test_switch_episodes_and_restarted_worlds_read_the_clip_they_follow():
    two = MotionSet([DATA / "layup", DATA / "run"])  # labels 31 and 13
    env = _env(two, n=4, switch_starts=SwitchStarts(1.0))
    env.reset()
    t = two.table

    def expected(aligned: bool) -> torch.Tensor:
        rows = two.rows(env.motion_ids, env.frame_ids + 1)
        al = env.align if aligned else Alignment.identity(env.num_envs)
        phase = clip_phase(env.frame_ids + 1, two.lengths[env.motion_ids], 0)
        return reference_obs(env.sim.body_pos_w[:, 0], env.sim.body_quat_w[:, 0], al.point(t.body_pos[rows]),
                             al.point(t.ball_pos[rows]), al.vector(t.ball_vel[rows]), t.contact[rows], phase)

    assert bool(env.switched.all())
    feats = env.reference_obs()
    assert torch.equal(feats, expected(True))
    # Laid onto the start, the followed clip's next pelvis is near the humanoid's; where the clip lies in the data
    # it is metres away (other clips, elsewhere on the court).
    assert float(feats[:, :3].norm(dim=-1).max()) < 0.3
    assert float(expected(False)[:, :3].norm(dim=-1).max()) > 1.0
    for k in range(3):
        if k == 1:  # world 0 falls (the pelvis at shin height) and restarts inside the step
            knock_down(env, 0)
        _, _, terminated, _, _ = env.step(_ref_actions(env))
        assert bool(terminated[0]) == (k == 1)
        assert torch.equal(env.reference_obs(), expected(True))
    assert float(env.reference_obs()[0, :3].norm()) < 0.3  # the restarted world's new episode


# --- the agent, --init-from --------------------------------------------------------------------------------------
def _plain_file(path):
    """A skill policy file whose critic sees what the actor sees (tests/policies.py)."""
    return write_layup_policy(path)


def _value(agent, obs: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
    """The critic's value (denormalised) on observations obs (B, num_obs) and reference features ref (B, R)."""
    with torch.no_grad():
        ref_n = None if ref is None else agent.ref_norm.normalize(ref)
        return agent.value_norm.denormalize(agent.value(agent.critic_obs(agent.obs_norm.normalize(obs), ref_n)))


@pytest.mark.parametrize("history_steps, labels", [(0, [31]), (2, [13, 31])], ids=["plain", "history-and-skills"])
def test_a_critic_that_does_not_see_the_reference_is_seated_for_it_and_keeps_its_values(tmp_path, capsys,
                                                                                         history_steps, labels):
    file = _plain_file(tmp_path / "plain.pt")
    num_obs = skill_obs_dim(history_steps)
    run = train_llc.Agent(num_obs, file.actor[-1].out_features, (16,), -2.9, num_reference=REFERENCE_OBS_DIM)
    policy = recipe.init_from(tmp_path / "plain.pt", run.actor, run.obs_norm, (16,), num_obs, "rigid",
                              torch.device("cpu"), show=True, critic=run.critic, value_norm=run.value_norm,
                              skill_labels=labels, history_steps=history_steps, ref_norm=run.ref_norm)
    assert set(policy.critic_state) == {"critic", "value_norm"}  # carried: no warm-up (recipe.start)
    line = capsys.readouterr().out
    assert line.startswith(f"init from {tmp_path / 'plain.pt'} (actor and critic)") and line.count("\n") == 1
    assert "; reference inputs seated for the critic" in line
    # The reference normaliser at its defaults; weight 0 on the reference's inputs, the file's on the others.
    assert float(run.ref_norm.count) == 0 and bool((run.ref_norm.mean == 0).all() and (run.ref_norm.var == 1).all())
    w = run.critic[0].weight
    assert w.shape == (16, num_obs + REFERENCE_OBS_DIM) and torch.count_nonzero(w[:, num_obs:]) == 0
    assert torch.equal(w[:, :OBS_DIM], file.critic[0].weight[:, :OBS_DIM])
    # Its values on any reference (and any past) are the file's critic's on the present alone.
    gen = torch.Generator().manual_seed(1)
    present = 3.0 * torch.randn(16, OBS_DIM, generator=gen) + torch.linspace(-2, 2, OBS_DIM)
    past = 3.0 * torch.randn(16, history_steps * OBS_DIM, generator=gen)
    ref = 2.0 * torch.randn(16, REFERENCE_OBS_DIM, generator=gen)
    for lab in labels:
        one_hot = skills.one_hot(torch.full((16,), lab))
        want = _value(file, torch.cat((present, skills.one_hot(torch.full((16,), 31))), -1))
        got = _value(run, torch.cat((present, past, one_hot), -1), ref)
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-5), lab
    # The reference's inputs vary after normalisation, so their weights learn: they get gradients.
    run.ref_norm.update(ref)
    x = run.critic_obs(run.obs_norm.normalize(torch.cat((present, past, one_hot), -1)), run.ref_norm.normalize(ref))
    run.value(x).square().sum().backward()
    assert torch.count_nonzero(run.critic[0].weight.grad[:, num_obs:]) > 0


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory):
    """A skill policy file of the rigid hand whose critic sees the reference, as train_llc.py exports it, with the
    environment and the agent that wrote it."""
    rigid = MotionSet(DATA / "layup", hand="rigid")
    args = train_llc.Args(hidden=(16,), critic_reference=True, env=EnvConfig(backend="mujoco", hand="rigid"))
    env = ImitationEnv(args.env, rigid, 2, "cpu")
    torch.manual_seed(0)
    agent = train_llc.Agent(env.num_obs, env.num_actions, args.hidden, args.log_std, num_reference=REFERENCE_OBS_DIM)
    obs = env.reset()
    for _ in range(3):  # normalisers with statistics of their own
        agent.obs_norm.update(obs)
        agent.ref_norm.update(env.reference_obs())
        obs = env.step(_ref_actions(env))[0]
    agent.value_norm.update(torch.tensor([1.0, 2.0, 4.0]))
    path = tmp_path_factory.mktemp("reference") / "policy.pt"
    checkpoint.save_atomic(policy_export(agent, args, env, 1, 32), path)
    return path, env, agent


def test_a_critic_that_sees_the_reference_is_loaded_as_it_is_and_a_plain_run_leaves_it(reference_file, capsys):
    path, env, file = reference_file
    saved = checkpoint.load(path, POLICY_FORMAT)
    assert saved["critic_reference"] is True and set(saved["ref_norm"]) == {"mean", "var", "count"}
    args = dict(lr=1e-3, batch=64, seed=1, critic_warmup_iterations=3, hidden=(16,), device=torch.device("cpu"),
                show=True)
    same = train_llc.Agent(env.num_obs, env.num_actions, (16,), -2.9, num_reference=REFERENCE_OBS_DIM)
    _, warmup = recipe.start(same, env, None, str(path), None, **args)
    assert warmup == 0 and capsys.readouterr().out == f"init from {path} (actor and critic)\n"
    for k, v in file.state_dict().items():
        assert torch.equal(same.state_dict()[k], v), k
    obs, ref = env.observe(), env.reference_obs()
    assert torch.equal(_value(same, obs, ref), _value(file, obs, ref))
    # A run whose critic does not see the reference: the file's actor, a new critic that warms up, one line why.
    torch.manual_seed(5)
    plain = train_llc.Agent(env.num_obs, env.num_actions, (16,), -2.9)
    fresh = {k: v.clone() for k, v in plain.critic.state_dict().items()}
    _, warmup = recipe.start(plain, env, None, str(path), None, **args)
    assert warmup == 3 and plain.ref_norm is None
    assert capsys.readouterr().out == (f"init from {path} (actor; new critic: the file's critic sees the reference "
                                       f"motion (--critic-reference), this run's does not)\n")
    assert all(torch.equal(plain.critic.state_dict()[k], v) for k, v in fresh.items())
    assert torch.equal(plain.actor[0].weight, file.actor[0].weight) and float(plain.value_norm.count) == 0
    # Features of another size (another version of reference_obs): one line.
    saved["ref_norm"] = {k: v[:10] if v.dim() else v for k, v in saved["ref_norm"].items()}
    checkpoint.save_atomic(saved, path.parent / "other.pt")
    with pytest.raises(checkpoint.CheckpointError, match="it sees 10 reference features, this checkout.s 168"):
        recipe.start(train_llc.Agent(env.num_obs, env.num_actions, (16,), -2.9, num_reference=REFERENCE_OBS_DIM),
                     env, None, str(path.parent / "other.pt"), None, **args)


# --- train_llc.py with the flag --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flag_run(tmp_path_factory):
    """A run of three iterations with --critic-reference, and the same run stopped after two and resumed."""
    d = tmp_path_factory.mktemp("flag")
    r = _run(*FAST, "--critic-reference", "--iterations", "3", "--run-dir", d / "a")
    assert r.returncode == 0, r.stderr
    r = _run(*FAST, "--critic-reference", "--iterations", "2", "--run-dir", d / "b")
    assert r.returncode == 0, r.stderr
    r = _run(*FAST, "--iterations", "3", "--resume", d / "b" / "checkpoint.pt")  # the flag: the checkpoint's
    assert r.returncode == 0, r.stderr
    return d


def test_a_run_with_the_flag_trains_the_privileged_critic_and_resumes_exactly(flag_run):
    ca = checkpoint.load(flag_run / "a" / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    cb = checkpoint.load(flag_run / "b" / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    assert ca["args"]["critic_reference"] is True and cb["args"]["critic_reference"] is True
    assert ca["num_obs"] == SKILL_OBS_DIM  # the actor's observation, as without the flag
    assert ca["agent"]["critic.0.weight"].shape == (64, SKILL_OBS_DIM + REFERENCE_OBS_DIM)
    assert ca["agent"]["actor.0.weight"].shape == (64, SKILL_OBS_DIM)
    assert float(ca["agent"]["ref_norm.count"]) == 3 * 8 * 4  # learned from every rollout sample
    assert ca["iteration"] == cb["iteration"] == 3
    for k, v in ca["agent"].items():
        assert torch.equal(v, cb["agent"][k]), k  # resumed = uninterrupted, to the bit (CPU)
    rows = (flag_run / "a" / "progress.csv").read_text().splitlines()
    kl = [float(row.split(",")[rows[0].split(",").index("kl")]) for row in rows[1:]]
    assert kl[0] == 0.0 and kl[2] > 0.0  # the critic's warm-up, then the actor learns


def test_a_policy_file_of_the_flag_is_read_by_every_reader_of_the_actor(flag_run, tmp_path):
    path = flag_run / "a" / "policy.pt"
    policy = load_policy(path, num_obs=skill_obs_dim)
    assert policy.num_obs == SKILL_OBS_DIM and policy.info["critic_reference"] is True
    assert set(policy.critic_state) == {"critic", "value_norm", "ref_norm"}
    r = run_python("-m", "skillmimic.evaluate", "--checkpoint", path, "--episodes", "1", "--horizon", "3", "--device",
                   "cpu", "--backend", "mujoco", timeout=300)
    assert r.returncode == 0, r.stderr
    player = play.make_player(play.Args(checkpoint=str(path), motion_dir=str(DATA / "layup")))
    player.tick()
    assert player.env.num_obs == SKILL_OBS_DIM


def test_train_llc_seats_a_plain_critic_and_a_plain_run_leaves_a_privileged_one(flag_run, tmp_path):
    _plain_file(tmp_path / "plain.pt")
    small = ["--device", "cpu", "--num-envs", "2", "--num-steps", "4", "--num-minibatches", "2", "--hidden", "16",
             "--iterations", "1"]
    r = _run(*small, "--run-dir", tmp_path / "seated", "--init-from", tmp_path / "plain.pt", "--critic-reference")
    assert r.returncode == 0, r.stderr
    assert (f"init from {tmp_path / 'plain.pt'} (actor and critic); reference inputs seated for the critic\n"
            in r.stdout), r.stdout
    assert load_policy(tmp_path / "seated" / "policy.pt").info["critic_reference"] is True
    r = _run(*FAST, "--iterations", "1", "--run-dir", tmp_path / "plain", "--init-from", flag_run / "a" / "policy.pt")
    assert r.returncode == 0, r.stderr
    assert "(actor; new critic: the file's critic sees the reference motion (--critic-reference), this run's does " \
           "not)\n" in r.stdout, r.stdout
    exported = checkpoint.load(tmp_path / "plain" / "policy.pt", POLICY_FORMAT)
    assert exported["critic_reference"] is False and "ref_norm" not in exported
    assert exported["critic"]["0.weight"].shape == (64, SKILL_OBS_DIM)


def test_the_update_loss_takes_the_critic_s_input_compiled_or_not(needs_torch_compile):
    """ppo_loss's value loss on the critic's input (the observation and the reference features), eager and
    --compile's alike; the actor's part does not see the reference."""
    torch.manual_seed(0)
    agent = train_llc.Agent(20, 6, (32, 32), log_std=-1.0, num_reference=7)
    b = 64
    obs, act, mu_old = torch.randn(b, 20), torch.randn(b, 6) * 0.3, torch.randn(b, 6) * 0.3
    critic_obs = agent.critic_obs(obs, torch.randn(b, 7))
    logp_old, adv, ret_n = torch.randn(b) - 3.0, torch.randn(b), torch.randn(b)
    results = []
    for compiled in (False, True):
        agent.zero_grad(set_to_none=True)
        loss, stats = train_llc.loss_function(compiled)(agent, obs, act, logp_old, adv, ret_n, mu_old,
                                                        torch.full((6,), -1.1), 1.0, 0.2, 10.0, 5.0, critic_obs)
        loss.backward()
        results.append((loss.detach(), stats, [p.grad.clone() for p in agent.parameters()]))
    (l0, s0, g0), (l1, s1, g1) = results
    assert torch.allclose(l0, l1, rtol=1e-5, atol=1e-6)
    for k in s0:
        assert torch.allclose(s0[k], s1[k], rtol=1e-5, atol=1e-6), k
    for a, c in zip(g0, g1):
        assert torch.allclose(a, c, rtol=1e-4, atol=1e-6)
    want = 0.5 * (agent.critic(critic_obs).squeeze(-1) - ret_n).square().mean()
    assert torch.allclose(s0["losses/value_loss"], want.detach())
    assert torch.count_nonzero(agent.critic[0].weight.grad[:, 20:]) > 0
