"""Train a high-level controller with PPO over skills: one file, CleanRL style, discrete actions.

    python train_hlc.py --task scoring --llc runs/llc/policy.pt           # writes runs/hlc
    python train_hlc.py --config configs/hlc/heading.yaml                 # writes runs/hlc_heading (its run_dir)
    python train_hlc.py --resume runs/hlc_heading/checkpoint.pt
    torchrun --standalone --nproc_per_node=2 train_hlc.py --task scoring --num-envs 8192    # two GPUs

The policy picks, every 3 control steps, which skill the frozen skill policy (--llc, an exported policy.pt; by
default the one shipped in skillmimic/assets; named in the files by its sha256 and its path, skillmimic.llc_link)
plays: its action is an index into the task's skills (`skillmimic.tasks`). A categorical actor and a critic on
normalised observations (humanoid, ball, goal; with --sticky also the skill played last, and a learned bias
toward keeping it: skillmimic.sticky); value normalisation; GAE with time-outs bootstrapped; the clipped
surrogate with an entropy bonus; gradient clipping; tensorboard and run_dir/progress.csv (reward, success rate,
episode length, samples/s); atomic checkpoints every `checkpoint_every` iterations and on exit (Ctrl-C or SIGTERM
stops at the end of the iteration); `--resume`, in the checkpoint's own folder, on the skill policy it was started
with; the policy alone in run_dir/policy.pt for `python -m skillmimic.evaluate_task` and `play.py --task`. A folder
that holds a run is never overwritten without `--overwrite`, and a NaN or Inf stops the run before it is saved
(skillmimic.runs). Under torchrun each rank runs num_envs / ranks environments on its own GPU
(skillmimic.distributed), as train_llc.py does.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from skillmimic import DATA, distributed, plan, runs
from skillmimic.advantage import gae
from skillmimic.cli import check_counts, run_command
from skillmimic.envs.task_env import TaskEnv, TaskEnvConfig, make_task_env
from skillmimic.llc_link import SHIPPED_LLC, find_llc, llc_reference
from skillmimic.normalizer import EmpiricalNormalization
from skillmimic.policy import mlp, task_actor, task_logits, task_policy_file
from skillmimic.sticky import check_sticky, last_one_hot
from skillmimic.tasks import TASKS, CirclingConfig, TaskName, HeadingConfig, ScoringConfig, ThrowingConfig

TRAIN_FORMAT = "skillmimic-hlc-train/1"
DEFAULTS = plan.Defaults(gpu_iterations=2000)  # --iterations by device (a CPU: a short run, skillmimic.plan)


@dataclasses.dataclass
class Args:
    task: TaskName = "heading"
    """The task to learn."""
    llc: str | None = None
    """The frozen skill policy (an exported policy.pt of train_llc.py); default: the one shipped with the package.
    With --resume: the run's own, found by its sha256 and path as play.py finds a high-level policy's; given, it
    must be that file."""
    motion_dir: str = str(DATA)
    """Clips whose frames start the episodes (those of the task's starting skills)."""
    run_dir: str | None = None
    """Where checkpoints, the exported policy and logs go (default: runs/hlc; with --resume, the checkpoint's
    folder). A folder that holds another run is refused unless --overwrite."""
    seed: int = 1
    """Seed of torch and of the environment (starts and goals); rank r of a torchrun run uses seed + r."""
    device: str = "auto"
    """'cuda', 'cpu' or 'auto'."""
    num_envs: int | None = None
    """Parallel environments in all, shared evenly by the torchrun ranks (default: --envs-per-gpu per GPU, 8 per CPU
    process)."""
    envs_per_gpu: int = 4096
    """Environments per GPU when --num-envs is not given; a CPU process runs 8 whatever this says."""
    num_steps: int = 32
    """High-level decisions per environment per rollout."""
    iterations: int | None = None
    """Rollout-and-update iterations to run in all, counting those of a resumed run (default: 2,000 on a GPU; 100 on
    a CPU, minutes to try the pipeline; resuming: the run's own)."""
    learning_rate: float = 2e-4
    """Adam's step size."""
    gamma: float = 0.99
    """Discount factor per decision."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    num_minibatches: int = 4
    """Minibatches per epoch."""
    update_epochs: int = 4
    """Passes over each rollout."""
    clip_coef: float = 0.2
    """Surrogate clipping."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    vf_coef: float = 1.0
    """Weight of the value loss."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    hidden: tuple[int, ...] = (512, 256)
    """Hidden layer widths of the actor and of the critic."""
    sticky: float = 0.0
    """Sticky exploration, p in [0, 1): the actor also sees the skill each world played last and starts out keeping
    it with probability p + (1 - p) / A (keep it with p, else draw uniformly among the A skills), through a learned
    logit bias that PPO can lower (skillmimic.sticky); the critic sees the last skill too. 0: off, the plain actor.
    On throwing, random controllers that decide at 20 Hz succeeded in none of 128 episodes with p = 0 (all fell)
    and in 4.3-7.8% with p = 0.99 (results/task_diagnosis/README.md, section 5): try 0.99. Recorded in policy.pt,
    which evaluation, play.py and tools/scripted_task.py --hlc follow."""
    tf32: bool = False
    """Matrix products (this controller's and the frozen skill policy's) in TF32 on the GPU's tensor cores instead of
    FP32 (train_llc.py's --tf32; README, "Where one GPU's time goes"); a speed setting, taken from the command line
    on --resume."""
    checkpoint_every: int = 50
    """Write run_dir/checkpoint.pt every this many iterations (and on exit)."""
    resume: str | None = None
    """A training checkpoint to continue, in its own folder unless --run-dir says otherwise. The run goes on with
    the settings it was started with; only iterations, checkpoint_every, run_dir, overwrite, device, llc and tf32
    are taken from this command line."""
    overwrite: bool = False
    """Start a new run in a run_dir that holds one, replacing its checkpoint, policy, progress.csv and logs."""
    env: TaskEnvConfig = dataclasses.field(default_factory=TaskEnvConfig)
    """The environment (its number of worlds and its device are --num-envs and --device above)."""
    heading: HeadingConfig = dataclasses.field(default_factory=HeadingConfig)
    """Settings of the heading task."""
    circling: CirclingConfig = dataclasses.field(default_factory=CirclingConfig)
    """Settings of the circling task."""
    throwing: ThrowingConfig = dataclasses.field(default_factory=ThrowingConfig)
    """Settings of the throwing task."""
    scoring: ScoringConfig = dataclasses.field(default_factory=ScoringConfig)
    """Settings of the scoring task."""


class Agent(nn.Module):
    """Categorical actor and critic on normalised observations; the critic predicts normalised values. With sticky
    > 0 both also read each world's last skill last (N,) (TaskEnv.last_skill; skillmimic.sticky): the actor's
    choice, hence the value, depends on it."""

    def __init__(self, num_obs: int, num_actions: int, hidden: tuple[int, ...], sticky: float = 0.0):
        super().__init__()
        self.obs_norm = EmpiricalNormalization(num_obs)
        self.value_norm = EmpiricalNormalization(())
        self.actor = task_actor(num_obs, num_actions, hidden, sticky)
        self.num_last = num_actions if sticky else 0  # the critic's one-hot of the last skill: none without sticky
        self.critic = mlp(num_obs + self.num_last, hidden, 1, out_std=1.0)

    def value(self, obs_n: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        if self.num_last:
            obs_n = torch.cat((obs_n, last_one_hot(last, self.num_last)), dim=-1)
        return self.critic(obs_n).squeeze(-1)

    def dist(self, obs_n: torch.Tensor, last: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=task_logits(self.actor, obs_n, last))


def policy_export(agent: Agent, args: Args, task_cfg, env: TaskEnv, llc_ref: dict, iteration: int,
                  global_step: int) -> dict:
    """What play.py and the evaluation need: the actor, the observation normaliser, the task it serves (its
    settings task_cfg), and the skill policy it drives (`llc` as given, and llc_ref: llc_link.llc_reference's
    llc_sha256 and llc_path)."""
    return task_policy_file(agent.actor, agent.obs_norm, env.num_obs, env.num_actions, tuple(args.hidden),
                            task=args.task, skills=env.task.skills, task_config=dataclasses.asdict(task_cfg),
                            llc_steps=env.cfg.llc_steps, llc=args.llc, **llc_ref, hand=env.sim.spec.hand,
                            model_sha256=env.sim.spec.sha256, sticky=args.sticky, iteration=iteration,
                            samples=global_step)


RESUME_OVERRIDES = ("iterations", "checkpoint_every", "run_dir", "overwrite", "device", "resume", "llc", "tf32")


def main(args: Args) -> None:
    # Everything a user can get wrong is checked before anything is built, each as one line (skillmimic.runs).
    check_counts(args, "num_envs", "envs_per_gpu", "num_steps", "iterations", "num_minibatches", "update_epochs",
                 "checkpoint_every")
    check_sticky(args.sticky)
    args, resume = runs.resume_run(args, TRAIN_FORMAT, RESUME_OVERRIDES)
    if resume is not None:
        # The run's own skill policy: the file of its sha256 (checkpoints from before it was recorded: its path).
        saved = {"llc": resume["args"].get("llc"), "llc_path": resume.get("llc_path"),
                 "llc_sha256": resume.get("llc_sha256")}
        args = dataclasses.replace(args, llc=str(find_llc(args.resume, saved, args.llc)))
    elif args.llc is None:
        args = dataclasses.replace(args, llc=str(SHIPPED_LLC))
    args = dataclasses.replace(args, iterations=plan.iterations(args.iterations, args.device, resume, DEFAULTS))
    run = runs.Run(args, resume, "runs/hlc")  # its folder, ranks, device and environments
    args, ranks, device, local_envs = run.args, run.ranks, run.device, run.local_envs
    torch.backends.cuda.matmul.allow_tf32 = args.tf32  # no effect on a CPU
    task_cfg = getattr(args, args.task)  # the chosen task's settings: the one task config the run reads and saves
    env, _ = make_task_env(args.env, args.motion_dir, local_envs, device, args.seed + ranks.rank, task=args.task,
                           task_cfg=task_cfg, llc=args.llc)  # a skill policy that lacks the task's skills: refused
    run.announce("train_hlc.py", env.sim, env.cfg.llc_steps, DEFAULTS)
    llc_ref = llc_reference(args.llc)  # the skill policy's sha256 and path, in the checkpoint and the policy
    agent = Agent(env.num_obs, env.num_actions, tuple(args.hidden), args.sticky).to(device)
    distributed.share_normalizers_(agent)  # under torchrun their statistics are those of all ranks
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    obs, start_iteration, global_step = run.restore(env, agent, optimizer)  # a new run's, or the checkpoint's
    batch_size = local_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches

    # Rollout storage: (num_steps, local_envs, ...).
    obs_buf = torch.zeros(args.num_steps, local_envs, env.num_obs, device=device)
    act_buf = torch.zeros(args.num_steps, local_envs, dtype=torch.long, device=device)
    last_buf = torch.zeros(args.num_steps, local_envs, dtype=torch.long, device=device)  # the skill played last
    logp_buf = torch.zeros(args.num_steps, local_envs, device=device)
    rew_buf = torch.zeros(args.num_steps, local_envs, device=device)
    done_buf = torch.zeros(args.num_steps, local_envs, device=device)
    timeout_buf = torch.zeros(args.num_steps, local_envs, device=device)
    val_buf = torch.zeros(args.num_steps, local_envs, device=device)

    # Saved every checkpoint_every iterations and at the end; Ctrl-C or SIGTERM: finish the iteration, save, stop.
    # Besides the run's state (skillmimic.runs): its skill policy; its args hold only its own task's settings.
    saved_args = {k: v for k, v in dataclasses.asdict(args).items() if k not in TASKS or k == args.task}
    entries = {"format": TRAIN_FORMAT, **llc_ref, "args": saved_args}
    with run.loop(lambda i: run.checkpoint(i, global_step, obs, entries,
                                           policy_export(agent, args, task_cfg, env, llc_ref, i, global_step))):
        for iteration in range(start_iteration + 1, args.iterations + 1):
            ended = torch.zeros((), device=device)
            succeeded = torch.zeros((), device=device)
            ended_len = torch.zeros((), device=device)
            agent.train()
            for step in range(args.num_steps):
                with torch.no_grad():
                    obs_n = agent.obs_norm(obs)
                    last = env.last_skill.clone()  # -1 at an episode's start
                    dist = agent.dist(obs_n, last)
                    action = dist.sample()
                    value = agent.value_norm.denormalize(agent.value(obs_n, last))
                obs_buf[step], act_buf[step], last_buf[step] = obs_n, action, last
                logp_buf[step], val_buf[step] = dist.log_prob(action), value
                obs, reward, terminated, truncated, info = env.step(action)
                rew_buf[step] = reward
                done = terminated | truncated
                done_buf[step], timeout_buf[step] = done.float(), truncated.float()
                global_step += run.num_envs * env.cfg.llc_steps  # control steps (simulator samples)
                ended += done.sum()
                succeeded += info["success"].sum()
                ended_len += (info["episode_steps"] * done).sum()

            with torch.no_grad():
                next_obs_n = agent.obs_norm.normalize(obs)
                next_value = agent.value_norm.denormalize(agent.value(next_obs_n, env.last_skill))
                advantages, returns = gae(rew_buf, val_buf, done_buf, timeout_buf, next_value, args.gamma,
                                          args.gae_lambda)
                agent.value_norm.update(returns.flatten())

            b_obs, b_act, b_last = obs_buf.reshape(batch_size, -1), act_buf.flatten(), last_buf.flatten()
            b_logp, b_adv = logp_buf.flatten(), advantages.flatten()
            b_ret_n = agent.value_norm.normalize(returns.flatten())
            stats: dict[str, torch.Tensor] = {}  # the update's statistics, by their names in the log
            for _ in range(args.update_epochs):
                perm = torch.randperm(batch_size, device=device)
                for start in range(0, batch_size, minibatch_size):
                    mb = perm[start : start + minibatch_size]
                    mb_obs = b_obs[mb]  # gathered once for both networks (minibatch, num_obs)
                    dist = agent.dist(mb_obs, b_last[mb])
                    logratio = dist.log_prob(b_act[mb]) - b_logp[mb]
                    ratio = logratio.exp()
                    adv = b_adv[mb]
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                    pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                    v_loss = 0.5 * (agent.value(mb_obs, b_last[mb]) - b_ret_n[mb]).square().mean()
                    entropy = dist.entropy().mean()
                    loss = pg_loss + args.vf_coef * v_loss - args.ent_coef * entropy
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    distributed.average_gradients_(list(agent.parameters()))
                    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    optimizer.step()
                    with torch.no_grad():
                        kl = ((ratio - 1) - logratio).mean()
                        clipfrac = ((ratio - 1.0).abs() > args.clip_coef).float().mean()
                        for k, v in {"losses/policy_loss": pg_loss, "losses/value_loss": v_loss,
                                     "losses/entropy": entropy, "losses/approx_kl": kl,
                                     "losses/clipfrac": clipfrac}.items():
                            stats[k] = stats.get(k, 0.0) + v.detach()

            # Logging: one device sync (and one all-reduce over the ranks) per iteration (skillmimic.runs).
            n, w = args.update_epochs * args.num_minibatches, ranks.world_size
            summed = run.reduce({"reward": rew_buf.mean(), "succeeded": succeeded, "ended": ended,
                                 "ended_steps": ended_len, **{k: v / n for k, v in stats.items()}})
            ended_n = max(summed["ended"], 1)
            scalars = {"mean_reward": summed["reward"] / w, "success_rate": summed["succeeded"] / ended_n,
                       "episode_length": summed["ended_steps"] / ended_n,
                       "samples_per_s": run.samples_per_s(global_step), **{k: summed[k] / w for k in stats}}
            run.log(iteration, global_step, scalars, f"reward {scalars['mean_reward']:.3f}  success "
                    f"{100 * scalars['success_rate']:.1f}%  SPS {scalars['samples_per_s']:,.0f}")
            if run.end_iteration(iteration):  # saves every checkpoint_every iterations; True: stop requested
                break


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
