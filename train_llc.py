"""Train the skill policy (low-level controller) with PPO on the HOI imitation reward. One file, CleanRL style.

    python train_llc.py --motion-dir data/BallPlay-M/layup
    python train_llc.py --config configs/llc/layup.yaml
    python train_llc.py --resume runs/llc/checkpoint.pt
    torchrun --standalone --nproc_per_node=2 train_llc.py --num-envs 8192    # two GPUs (skillmimic.distributed)

One Gaussian policy, conditioned on a skill one-hot, with a fixed or learned state-independent log-std; separate
actor and critic MLPs (with --critic-reference the critic also sees the reference motion, the actor only in a
teacher, --actor-reference: skillmimic/envs/reference_obs.py); observation and value normalisation as modules with
buffers; GAE with time-outs bootstrapped; the clipped surrogate, a bounds loss on the action means and gradient
clipping; optionally a KL-adaptive learning rate (rsl_rl's rule). A new run starts with a warm start (the actor
fitted by regression to the data's next-frame PD targets from reference states, the observation normaliser to those
states) or from an exported policy (`--init-from`, its critic too if the file has one; skillmimic.recipe); a new
critic learns alone first. Checkpoints (run_dir/checkpoint.pt) are written atomically every `checkpoint_every`
iterations and on exit; Ctrl-C (or SIGTERM) stops at the end of the iteration and saves; `--resume` continues one
exactly, in its own folder. At the end (or exit) the policy alone goes to run_dir/policy.pt, for play.py and the
evaluation; run_dir/progress.csv holds one row per iteration (samples, mean reward, episode length, samples/s, KL,
clip fraction, learning rate, log-std, the ball error on the clip's frames, the assist's factor, and the columns of
the options that are on). A folder holding a run is never overwritten without `--overwrite`, and a NaN or Inf stops
the run before it is saved (skillmimic.runs). Under torchrun each rank simulates num_envs / ranks environments on
its own GPU, gradients and normaliser statistics are shared, and rank 0 alone logs and writes files.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn

from skillmimic import DATA, distributed, plan, recipe, runs
from skillmimic.advantage import gae
from skillmimic.cli import run_command
from skillmimic.distill import RolloutLabels, load_teachers
from skillmimic.envs.imitation import EnvConfig, ImitationEnv, load_motions
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM
from skillmimic.normalizer import EmpiricalNormalization
from skillmimic.export import policy_export
from skillmimic.policy import actor_network, mlp

TRAIN_FORMAT = "skillmimic-llc-train/1"
DEFAULTS = plan.Defaults(gpu_iterations=10_000)  # --iterations by device (a CPU: a short run, skillmimic.plan)


@dataclasses.dataclass
class Args:
    motion_dir: str = str(DATA / "layup")
    """Clips to imitate: a folder (searched recursively) or a file."""
    run_dir: str | None = None
    """Where checkpoints, the exported policy and tensorboard logs go (default: runs/llc; with --resume, the
    checkpoint's folder). A folder that holds another run is refused unless --overwrite."""
    seed: int = 1
    """Seed of torch and of the environment's reference-state init (rank r of a torchrun run uses seed + r)."""
    device: str = "auto"
    """'cuda', 'cpu' or 'auto'."""
    num_envs: int | None = None
    """Parallel environments in all, shared evenly by the torchrun ranks (default: --envs-per-gpu per GPU, 8 a CPU)."""
    envs_per_gpu: int = 4096
    """Environments per GPU when --num-envs is not given; a CPU process runs 8 whatever this says (a config sets it
    for the GPU without making a CPU run take 9 GB)."""
    num_steps: int = 32
    """Control steps per environment per rollout."""
    iterations: int | None = None
    """Rollout-and-update iterations to run in all, counting those of a resumed run (default: 10,000 on a GPU; 100 on
    a CPU, a few minutes to try the pipeline: a skill takes tens of millions of samples; resuming: the run's own)."""
    learning_rate: float = 5e-5
    """Adam's step size (SkillMimic's is 2e-5; on the layup 5e-5 learned faster and 2e-4 collapsed)."""
    lr_warmup_iterations: int = 0
    """Iterations over which the step size rises to --learning-rate once the actor moves (recipe.warmup_lr)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    num_minibatches: int = 8
    """Minibatches per epoch."""
    update_epochs: int = 5
    """Passes over each rollout."""
    clip_coef: float = 0.2
    """Surrogate clipping."""
    vf_coef: float = 5.0
    """Weight of the value loss."""
    bounds_coef: float = 10.0
    """Weight of the loss that keeps action means within [-1, 1]."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    log_std: float = -2.9
    """The policy's log standard deviation (SkillMimic's, fixed); with learn_std its initial value."""
    learn_std: bool = False
    """Learn the log standard deviation (one per action, state-independent) with the policy."""
    desired_kl: float | None = None
    """KL-adaptive learning rate: after each minibatch the step size is divided by 1.5 when the KL from the
    rollout's policy exceeds 2x this, and multiplied by 1.5 when it is under half of it (None: fixed)."""
    warm_start_steps: int | None = None
    """Adam steps fitting the actor to the data's next-frame PD targets from reference states before PPO, in a
    new run not started --init-from (default: 1500 on a GPU, about 7 s; 200 on a CPU; 0: off). On the layup it
    raised the accuracy at 10.6M samples from 2.6% to 9.3%."""
    warm_start_lr: float = 1e-3
    """Step size of the warm start's regression."""
    warm_start_batch: int = 4096
    """Frames per step of the warm start's regression."""
    init_from: str | None = None
    """Start a new run from an exported policy (policy.pt): its actor and observation normaliser, and its critic
    and value normaliser when the file carries them (policies written since they do), so the run continues with
    no dip; otherwise the critic starts fresh and learns alone for critic_warmup_iterations. A file that observes
    no past may start a run with --env.history.steps K: it starts out computing what the file did
    (skillmimic.recipe.seat_history). A run with a mass curriculum starts it again unless given the file's step
    (--env.mass-curriculum.first-step; a note says so when the file records one)."""
    critic_warmup_iterations: int = 3
    """First iterations of a new run in which only the critic learns (the actor acts but does not move)."""
    actor_prime_iterations: int = 1
    """After the critic's warm-up, iterations in which the actor's gradients feed Adam's moments while its weights
    stay (0: none): a fresh Adam's first full-size steps wrecked continued policies (0.0% against 95.3% layup
    success after one CPU iteration; docs/llc_recipe.md, "Continuing a policy")."""
    critic_reference: bool = False
    """The critic also sees the reference motion (bodies, ball, contact label and clip phase at the frame the next
    reward scores: skillmimic/envs/reference_obs.py, which says why), through a normaliser of its own; the actor
    never does. The policy file carries that critic; --init-from seats a plain file's critic for it
    (skillmimic.recipe). All-skills round 3: reward 0.535 against 0.459 (docs/llc_recipe.md)."""
    actor_reference: bool = False
    """Train a teacher: the actor sees the reference too (after its observation; with --critic-reference, whose
    normaliser it shares), as the fastest trackers do. Its file drives no skill label alone: the evaluation and
    --teachers feed it the reference. A fresh actor, and --init-from a file whose actor does not see it, start
    with weight 0 on it (skillmimic.recipe.seat_reference), acting as the file or the warm start made them."""
    anchor_reference: bool = False
    """With --actor-reference: the reference the actor and the critic see is laid onto the humanoid's own position
    (skillmimic.envs.reference_obs.anchor, which says why); the file records it and every reader feeds it so."""
    teachers: tuple[str, ...] = ()
    """Distil from these exported policies (DAgger, skillmimic/distill.py, which says why): each file's actor labels
    the steps of the skills it was trained on with its action mean, and --distill-coef x the squared distance of
    the policy's means from those labels joins PPO's loss. Skills no file teaches learn by PPO alone. With
    --no-distill-ppo, --learning-rate is the distillation's: 5e-4 transferred the layup, 5e-5 did not (round 3)."""
    distill_coef: float = 1.0
    """Weight of the distillation loss (--teachers) against PPO's surrogate."""
    distill_ppo: bool = True
    """With --teachers, keep PPO's surrogate (--no-distill-ppo: the teachers alone; untaught skills stand still)."""
    distill_ppo_labels: tuple[int, ...] = ()
    """With --teachers, PPO's surrogate on these skills' samples alone (e.g. 1, the pickup: all-skills round 15),
    weighed --distill-ppo-weight; the others learn from their teachers alone."""
    distill_ppo_weight: float = 1.0
    """The surrogate's weight on --distill-ppo-labels' samples (1: a sample's weight without them; round 16)."""
    distill_teacher_share: float = 0.0
    """With --teachers and --no-distill-ppo, the share of the environments, drawn anew each iteration, that the
    teachers play instead of the policy (skillmimic.distill.teacher_share); progress.csv gets it."""
    distill_teacher_iterations: int = 0
    """Iterations over which --distill-teacher-share falls to 0 (0: it stays as given)."""
    distill_balance: bool = False
    """With --teachers, each taught skill weighs the same in the distillation loss, not each sample
    (skillmimic.distill.skill_weights, which says why: on all 19 skills the dribble, the pickup and the layup, whose
    episodes end early, hold a few percent of the samples); distill_mse is then the mean over the skills. Either
    way progress.csv gets each taught skill's distance, distill_mse_NNN."""
    hidden: tuple[int, ...] = (1024, 512, 512)
    """Hidden layer widths of the actor and of the critic."""
    skill_heads: bool = False
    """The actor's output layer one per skill, chosen by the skill one-hot (skillmimic.policy.SkillHeadsMLP; offline,
    a 19-skill student's distances to its teachers on their states 40% lower than one layer's; in DAgger not yet
    measured: docs/llc_recipe.md, "Skill heads"). --init-from a plain file copies its output layer into each head
    (recipe.seat_heads)."""
    tf32: bool = True
    """Matrix products in TF32 on the GPU's tensor cores, not FP32 (--no-tf32): on the layup at 8,192 environments on
    one H100, 216,500 samples/s against 178,400, the curve within two FP32 seeds' band (docs/llc_recipe.md, round 7).
    A speed setting, taken from the command line on --resume; no effect on a CPU."""
    compile: bool = True
    """On a GPU, the reward, the observation (ImitationEnv.compile) and the update's loss (ppo_loss) through
    torch.compile (--no-compile: eager): 249,800 against 229,700 samples/s on two H100s, the same learning curve
    (all-skills round 2, docs/llc_recipe.md). No effect on a CPU; taken from the command line on --resume."""
    update_bf16: bool = False
    """The update's forward passes under bf16 autocast (weights, Adam, the loss FP32), opt-in: it moves a trained
    policy's log-probabilities ten times as far as TF32 (README, "Where one GPU's time goes"). Taken on --resume."""
    checkpoint_every: int = 50
    """Write run_dir/checkpoint.pt every this many iterations (and on exit)."""
    keep_policies: bool = False
    """Also keep the policy of every checkpoint as run_dir/policies/iter_NNNNNN.pt (for learning curves:
    `python -m skillmimic.evaluate --checkpoint run_dir/policies`)."""
    resume: str | None = None
    """A training checkpoint to continue, in its own folder unless --run-dir says otherwise, with the settings it was
    started with; only RESUME_OVERRIDES (below: iterations, device, the speed settings ...) come from this line."""
    overwrite: bool = False
    """Start a new run in a run_dir that holds one, replacing its checkpoint, policy, progress.csv and logs."""
    env: EnvConfig = dataclasses.field(default_factory=recipe.training_env)
    """The environment (its number of worlds and its device are --num-envs and --device above); by default
    skillmimic.recipe.training_env, which says why: the rigid hand with the palm, 150 steps past the clip, an end
    when the ball is 0.5 m off the reference's, adaptive starts."""


class Agent(nn.Module):
    """Actor (Gaussian, fixed std) and critic on normalised observations; the critic predicts normalised values.
    With num_reference > 0 (--critic-reference) the critic also sees that many reference features, normalised by
    ref_norm (registered last, so that an agent without them is built, and draws its initial weights, as before);
    without, ref_norm is None. With actor_reference (--actor-reference) the actor sees them too, after the observation,
    with weight 0 on them at first (as recipe.seat_reference seats a file's)."""

    def __init__(self, num_obs: int, num_actions: int, hidden: tuple[int, ...], log_std: float,
                 learn_std: bool = False, num_reference: int = 0, actor_reference: bool = False,
                 skill_heads: list[int] | None = None):
        super().__init__()
        self.obs_norm = EmpiricalNormalization(num_obs)
        self.value_norm = EmpiricalNormalization(())
        self.actor_reference = actor_reference  # its input: the observation, then the reference (weight 0 on it)
        self.actor = actor_network(num_obs + (num_reference if actor_reference else 0), hidden, num_actions, num_obs,
                                   skill_heads)  # (skill_heads: the labels owning a head of the output layer)
        with torch.no_grad():
            self.actor[0].weight[:, num_obs:] = 0.0
        self.critic = mlp(num_obs + num_reference, hidden, 1, out_std=1.0)
        init = torch.full((num_actions,), float(log_std))
        if learn_std:  # a parameter or a buffer, under the same name: checkpoints of either kind load alike
            self.log_std = nn.Parameter(init)
        else:
            self.register_buffer("log_std", init)
        self.ref_norm = EmpiricalNormalization(num_reference) if num_reference else None

    def actor_obs(self, obs_n: torch.Tensor, ref_n: torch.Tensor | None) -> torch.Tensor:
        """The actor's input: obs_n (B, num_obs), and with --actor-reference ref_n after it (as critic_obs)."""
        return self.critic_obs(obs_n, ref_n) if self.actor_reference else obs_n

    @staticmethod
    def critic_obs(obs_n: torch.Tensor, ref_n: torch.Tensor | None) -> torch.Tensor:
        """The critic's input: obs_n (B, num_obs) and the reference features ref_n (B, num_reference), both
        normalised, the reference last -> (B, num_obs + num_reference); without them (None), obs_n itself."""
        return obs_n if ref_n is None else torch.cat((obs_n, ref_n), dim=-1)

    def value(self, critic_obs: torch.Tensor) -> torch.Tensor:
        """Normalised value, FP32 (--update-bf16's autocast computes it in bf16). critic_obs (B, num_obs
        [+ num_reference]) (critic_obs()) -> (B,)."""
        return self.critic(critic_obs).squeeze(-1).float()  # (a no-op outside autocast)

    def dist(self, obs_n: torch.Tensor) -> torch.distributions.Normal:
        """The policy's Gaussian on the actor's input obs_n (B, num_obs [+ num_reference]) (actor_obs()), its mean
        (B, num_actions) FP32 whatever autocast computed it in: log-probabilities of 66 actions summed in bf16 (about
        100, in steps of 0.5) would move PPO's ratio by more than its clipping."""
        mean = self.actor(obs_n).float()  # (B, num_actions); a no-op outside autocast
        # A learned log-std is kept within [-5, 1] (std 0.007 .. 2.7): outside, the surrogate's ratios blow up.
        return torch.distributions.Normal(mean, self.log_std.clamp(-5.0, 1.0).exp().expand_as(mean))


def ppo_loss(agent: Agent, obs: torch.Tensor, act: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
             ret_n: torch.Tensor, mu_old: torch.Tensor, old_log_std: torch.Tensor, actor_on: float, clip_coef: float,
             bounds_coef: float, vf_coef: float, critic_obs: torch.Tensor | None = None,
             teacher_mu: torch.Tensor | None = None, taught: torch.Tensor | None = None, distill_coef: float = 0.0,
             ppo_on: float | torch.Tensor = 1.0, bf16: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One minibatch's PPO loss: the clipped surrogate on advantages normalised within the minibatch, the loss that
    keeps action means within [-1, 1] (both off while actor_on is 0: the critic learns alone), the value loss on
    normalised returns. obs (B, num_obs) the actor's input, normalised (Agent.actor_obs: + num_reference with
    --actor-reference); act, mu_old (B, num_actions) the rollout's actions and means;
    logp_old, adv, ret_n (B,); old_log_std (num_actions,) the rollout's; critic_obs (B, num_obs + num_reference) the
    critic's input with --critic-reference (Agent.critic_obs), None: obs; with --teachers, teacher_mu (B,
    num_actions) the teachers' action means and taught (B,) 1 where a teacher teaches the sample's skill: the
    distillation loss, distill_coef x the mean over the taught samples of the squared distance of the action means
    (mean over actions), joins the actor's loss; ppo_on 0 leaves the surrogate out (--no-distill-ppo), a (B,) tensor
    weighs it by sample (--distill-ppo-labels). -> loss (), and the statistics the log keeps by name (policy, value
    and bounds losses; KL(rollout policy || current), exact for the two Gaussians; the clipped share; with
    teachers, distill_mse). With --compile, torch.compile'd: its elementwise pieces fused. bf16 (--update-bf16): the
    actor's and the critic's forward passes under autocast in bfloat16, their outputs FP32 (Agent.dist, Agent.value)
    and the rest of the loss FP32; the backward's products follow the forward's dtypes (autograd records autocast's
    casts), the gradients reach the FP32 weights as FP32."""
    with torch.autocast(obs.device.type, dtype=torch.bfloat16, enabled=bf16):
        dist = agent.dist(obs)
        value = agent.value(obs if critic_obs is None else critic_obs)  # (B,)
    logratio = dist.log_prob(act).sum(-1) - logp_old
    ratio = logratio.exp()
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip_coef, 1 + clip_coef))  # (B,)
    pg_loss = pg.mean()
    v_loss = 0.5 * (value - ret_n).square().mean()
    mu = dist.mean
    bounds = ((mu - 1.0).clamp(min=0).square() + (-1.0 - mu).clamp(min=0).square()).sum(-1).mean()
    actor_loss = (ppo_on * pg).mean() + bounds_coef * bounds
    distill = None
    if teacher_mu is not None and taught is not None:
        distill = (taught * (mu - teacher_mu).square().mean(-1)).sum() / taught.sum().clamp(min=1.0)
        actor_loss = actor_loss + distill_coef * distill
    loss = actor_on * actor_loss + vf_coef * v_loss
    with torch.no_grad():
        new_log_std = dist.scale.log()
        kl = (new_log_std - old_log_std + (torch.exp(2 * old_log_std) + (mu_old - mu).square())
              / (2 * torch.exp(2 * new_log_std)) - 0.5).sum(-1).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()
    stats = {"losses/policy_loss": pg_loss.detach(), "losses/value_loss": v_loss.detach(),
             "losses/bounds_loss": bounds.detach(), "kl": kl, "clipfrac": clipfrac}
    if distill is not None:
        stats["distill_mse"] = distill.detach()
    return loss, stats


def loss_function(compiled: bool) -> Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """ppo_loss, or (--compile) its torch.compile'd form."""
    return torch.compile(ppo_loss) if compiled else ppo_loss


# What a resumed run may change; everything else comes from the checkpoint.
RESUME_OVERRIDES = ("iterations", "checkpoint_every", "keep_policies", "run_dir", "overwrite", "device", "resume",
                    "init_from", "tf32", "compile", "update_bf16")


def main(args: Args) -> None:
    # Everything a user can get wrong is checked before anything is built, each as one line; a resumed run's settings.
    args, resume = recipe.checked_args(args, TRAIN_FORMAT, RESUME_OVERRIDES, DEFAULTS)
    run = runs.Run(args, resume, "runs/llc")  # its folder, ranks, device and environments
    args, ranks, device, local_envs = run.args, run.ranks, run.device, run.local_envs
    torch.backends.cuda.matmul.allow_tf32 = args.tf32  # the policy's and the critic's products (no effect on a CPU)
    motions = load_motions(args.motion_dir, args.env, device)  # (with --env.ball-starts, its fitted ball starts)
    env = ImitationEnv(args.env, motions, local_envs, device, seed=args.seed + ranks.rank)
    compiled = args.compile and device.type == "cuda"  # the CPU keeps the eager path
    if compiled:  # the reward and the observation fused (the update's loss too: loss_function)
        env.compile()
    run.announce("train_llc.py", env.sim, 1, DEFAULTS)
    heads = recipe.head_labels(args.skill_heads, env.skill_labels.tolist(), args.init_from, resume)
    agent = Agent(env.num_obs, env.num_actions, tuple(args.hidden), args.log_std, args.learn_std,
                  REFERENCE_OBS_DIM if args.critic_reference else 0, args.actor_reference, heads).to(device)
    distributed.share_normalizers_(agent)  # under torchrun their statistics are those of all ranks
    history, critic_warmup = recipe.start(  # a new run's actor (and critic): --init-from's, or the warm start
        agent, env, resume, args.init_from, args.warm_start_steps, args.warm_start_lr, args.warm_start_batch, args.seed,
        args.critic_warmup_iterations, tuple(args.hidden), device, show=ranks.main,
        actor_reference=args.actor_reference, anchor_reference=args.anchor_reference)
    teachers = load_teachers(args.teachers, env, device, show=ranks.main)  # --teachers (skillmimic.distill)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    loss_fn = loss_function(compiled)
    actor_params = [*agent.actor.parameters(), *([agent.log_std] if args.learn_std else [])]  # what priming keeps
    obs, start_iteration, global_step = run.restore(env, agent, optimizer)  # a new run's, or the checkpoint's
    # The critic's view of the reference (--critic-reference), of the state obs observes (a resumed run's: of the
    # environment restored, the same numbers).
    reference = recipe.reference_view(env, args.critic_reference, args.anchor_reference)
    ref = reference()  # (local_envs, REFERENCE_OBS_DIM) or None
    batch_size = local_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches

    # Rollout storage, allocated once: (num_steps, local_envs, ...).
    obs_buf = torch.zeros(args.num_steps, local_envs, env.num_obs, device=device)
    act_buf = torch.zeros(args.num_steps, local_envs, env.num_actions, device=device)
    logp_buf = torch.zeros(args.num_steps, local_envs, device=device)
    mu_buf = torch.zeros(args.num_steps, local_envs, env.num_actions, device=device)  # the rollout's means
    rew_buf = torch.zeros(args.num_steps, local_envs, device=device)
    done_buf = torch.zeros(args.num_steps, local_envs, device=device)
    timeout_buf = torch.zeros(args.num_steps, local_envs, device=device)
    val_buf = torch.zeros(args.num_steps, local_envs, device=device)
    ref_buf = torch.zeros(args.num_steps, local_envs, REFERENCE_OBS_DIM if args.critic_reference else 0,
                          device=device)  # the critic's reference features, normalised (none without them)
    labels = None if teachers is None else RolloutLabels(  # the teachers' labels of each rollout
        teachers, args.num_steps, local_envs, env.num_actions, env.skill_labels.tolist(), device,
        args.distill_teacher_share, args.distill_teacher_iterations, args.distill_balance, args.distill_ppo_labels,
        args.distill_ppo_weight)

    # Saved every checkpoint_every iterations and at the end (Ctrl-C, SIGTERM: finish the iteration, save, stop).
    entries = {"format": TRAIN_FORMAT, "num_obs": env.num_obs, "num_actions": env.num_actions, "hand": env.spec.hand,
               "hidden": list(args.hidden), "model_sha256": env.spec.sha256, "history_before": history,
               "skill_heads": heads}
    with run.loop(lambda i: run.checkpoint(i, global_step, obs, entries, policy_export(
            agent, args, env, i, global_step, history), args.keep_policies)):
        for iteration in range(start_iteration + 1, args.iterations + 1):
            term_sums: dict[str, torch.Tensor] = {}  # and the environment's scalars (ball error, assist factor)
            share = labels.begin(iteration) if labels is not None else 0.0  # --distill-teacher-share's
            ended_len, ended_n = torch.zeros((), device=device), torch.zeros((), device=device)
            agent.train()  # the observation normaliser learns from the rollout
            for step in range(args.num_steps):
                with torch.no_grad():
                    obs_n = agent.obs_norm(obs)
                    ref_n = None if ref is None else agent.ref_norm(ref)  # learns from the rollout, as obs_norm
                    dist = agent.dist(agent.actor_obs(obs_n, ref_n))
                    action = dist.sample()
                    value = agent.value_norm.denormalize(agent.value(agent.critic_obs(obs_n, ref_n)))
                obs_buf[step], act_buf[step], mu_buf[step] = obs_n, action, dist.mean
                logp_buf[step], val_buf[step] = dist.log_prob(action).sum(-1), value
                if ref_n is not None:
                    ref_buf[step] = ref_n
                if labels is not None:  # the teachers' means; they play the environments drawn for them
                    action = labels.record(step, obs, env.skill.argmax(-1), action)
                obs, reward, terminated, truncated, info = env.step(action)
                ref = reference()
                rew_buf[step] = reward
                done_buf[step] = (terminated | truncated).float()
                timeout_buf[step] = truncated.float()
                global_step += run.num_envs
                for k, v in info["terms"].items():  # summed over the rollout, by their names in the log
                    term_sums[f"reward_terms/{k}"] = term_sums.get(f"reward_terms/{k}", 0.0) + v.mean()
                for k, v in info["stats"].items():
                    term_sums[k] = term_sums.get(k, 0.0) + v
                ended = terminated | truncated
                ended_len += (info["episode_steps"] * ended).sum()
                ended_n += ended.sum()

            with torch.no_grad():
                ref_n = None if ref is None else agent.ref_norm.normalize(ref)  # the last observation's reference
                next_value = agent.value_norm.denormalize(agent.value(agent.critic_obs(agent.obs_norm.normalize(obs),
                                                                                       ref_n)))
                advantages, returns = gae(rew_buf, val_buf, done_buf, timeout_buf, next_value, args.gamma,
                                          args.gae_lambda)
                agent.value_norm.update(returns.flatten())

            b_obs = obs_buf.reshape(batch_size, -1)
            b_act = act_buf.reshape(batch_size, -1)
            b_mu = mu_buf.reshape(batch_size, -1)
            b_ref = ref_buf.reshape(batch_size, -1) if args.critic_reference else None
            b_teacher, b_taught, b_pg, taught_stats = labels.batch(b_mu) if labels is not None else (None,) * 3 + ({},)
            old_log_std = agent.log_std.detach().clamp(-5.0, 1.0).clone()  # the rollout's (num_actions,)
            b_logp, b_adv = logp_buf.flatten(), advantages.flatten()
            b_ret_n = agent.value_norm.normalize(returns.flatten())
            stats: dict[str, torch.Tensor] = {}  # the update's statistics, by their names in the log
            actor_on = 0.0 if iteration <= critic_warmup else 1.0
            priming = critic_warmup < iteration <= critic_warmup + args.actor_prime_iterations  # actor kept
            if args.lr_warmup_iterations:  # (a fixed rate: recipe.check_schedule)
                k = iteration - critic_warmup - args.actor_prime_iterations  # its k-th iteration moving the actor
                optimizer.param_groups[0]["lr"] = recipe.warmup_lr(args.learning_rate, args.lr_warmup_iterations, k)
            for _ in range(args.update_epochs):
                perm = torch.randperm(batch_size, device=device)
                for start in range(0, batch_size, minibatch_size):
                    mb = perm[start : start + minibatch_size]
                    critic_obs = agent.critic_obs(b_obs[mb], None if b_ref is None else b_ref[mb])
                    actor_in = critic_obs if args.actor_reference else b_obs[mb]  # (the same input)
                    loss, mb_stats = loss_fn(agent, actor_in, b_act[mb], b_logp[mb], b_adv[mb], b_ret_n[mb],
                                             b_mu[mb], old_log_std, actor_on, args.clip_coef, args.bounds_coef,
                                             args.vf_coef, critic_obs,
                                             None if b_teacher is None else b_teacher[mb],
                                             None if b_taught is None else b_taught[mb], args.distill_coef,
                                             b_pg[mb] if b_pg is not None else float(args.distill_ppo or not teachers),
                                             bf16=args.update_bf16)
                    if args.desired_kl is not None and actor_on and not priming:  # the KL of all ranks
                        kl = float(distributed.all_reduce_sum_(mb_stats["kl"].reshape(1).clone())) / ranks.world_size
                        recipe.adapt_lr(optimizer, kl, args.desired_kl)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    distributed.average_gradients_(list(agent.parameters()))
                    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    kept = [p.detach().clone() for p in actor_params] if priming else []
                    optimizer.step()
                    for p, k in zip(actor_params, kept):  # priming: Adam's moments moved, the actor not
                        p.data.copy_(k)
                    for k, v in mb_stats.items():
                        stats[k] = stats.get(k, 0.0) + v.detach()

            # Logging: one device sync (and one all-reduce over the ranks) per iteration (skillmimic.runs).
            n, w = args.update_epochs * args.num_minibatches, ranks.world_size
            summed = run.reduce({"reward": rew_buf.mean(), "ended_steps": ended_len, "ended": ended_n,
                                 **{k: v / n for k, v in stats.items()}, **taught_stats, **term_sums})
            scalars = {"mean_reward": summed["reward"] / w,
                       "episode_length": summed["ended_steps"] / max(summed["ended"], 1),
                       "samples_per_s": run.samples_per_s(global_step), **{k: summed[k] / w for k in stats},
                       **{k: summed[k] / w for k in taught_stats},
                       "learning_rate": optimizer.param_groups[0]["lr"],
                       "log_std": float(agent.log_std.detach().mean()),
                       **{k: summed[k] / w / args.num_steps for k in term_sums},
                       **({"distill_teacher_share": share} if args.distill_teacher_share > 0 else {})}
            run.log(iteration, global_step, scalars, f"reward {scalars['mean_reward']:.3f}  episode "
                    f"{scalars['episode_length']:.1f}  SPS {scalars['samples_per_s']:,.0f}")
            if run.end_iteration(iteration):  # saves every checkpoint_every iterations; True: stop requested
                break


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
