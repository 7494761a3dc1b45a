"""How a new skill-policy run's actor starts, before PPO (train_llc.py; docs/llc_recipe.md):

- warm_start: the actor fitted by regression to the data's next-frame PD targets from reference states, and the
  observation normaliser to those states (on the layup it raised the accuracy at 10.6M samples from 2.6% to 9.3%);
- init_from: the actor and observation normaliser of an exported policy (--init-from), checked as every policy
  file is (skillmimic.policy.load_policy), and its critic and value normaliser when the file carries them; on
  other skills than the file's, the skill inputs it never saw vary are seated for them (seat_skills); a file
  that observes no past continues in a run that observes its last K control steps with the history's inputs
  seated for it (seat_history); a critic that does not see the reference motion continues in a run whose critic
  does (train_llc.py --critic-reference) with the reference's inputs seated for it (seat_reference), and one that
  sees it is left behind by a run whose critic does not (a new critic, which warms up); an actor that does not see
  the reference starts a teacher whose actor does (--actor-reference) seated the same way, and a teacher's actor
  continues only as a teacher; a file's actor of one output layer continues in a run whose output layer is one
  per skill (train_llc.py --skill-heads) with every head a copy of it, a file's heads keep their labels and a
  label new to them starts from the file's shared head (seat_heads; head_labels decides the run's heads);
- start: whichever of the two a new run takes, and what came before it (skillmimic.lineage).

A new critic learns alone for the run's first critic_warmup_iterations; one carried by the policy file does not
(a run continued on two GPUs from a 30-million-sample layup policy went on at its reward, with a one-iteration
dip: docs/llc_recipe.md, round 4).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from skillmimic import checkpoint, distributed, lineage, plan, runs, skills
from skillmimic.cli import check_counts
from skillmimic.distill import check_options
from skillmimic.envs.imitation import EnvConfig
from skillmimic.envs.observations import OBS_DIM, skill_obs_dim
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM, anchor
from skillmimic.errors import UserError
from skillmimic.model import Physics
from skillmimic.normalizer import EmpiricalNormalization
from skillmimic.policy import SkillPolicy, actor_hidden, actor_network, check_model, load_policy, skill_heads_of
from skillmimic.rewards import RewardConfig


def training_env() -> EnvConfig:
    """A skill policy's training environment by default (train_llc.py's --env, and the collection of
    skillmimic.offline_distill). The rigid hand (2.9x the samples/s of the full hand, and more accurate after equal
    GPU time: README, "Hands"), with SkillMimic's box palm (at equal samples with the ball assist on: accuracy 8.4%
    against 6.7%, ball error 540 against 1,287 mm; docs/llc_recipe.md, round 4) and SkillMimic's form of the body
    errors (the form of every run behind the layup policy that succeeds, skillmimic/assets/llc_layup.pt; round 7);
    episodes go on 150 steps past their clip (the evaluation plays 300 steps from a clip's start) and end when the
    ball is 0.5 m off the reference's; starts are drawn more often where episodes fail (adaptive starts: on the
    layup at 762 million samples, 39% success against 8% without; docs/llc_recipe.md, round 6)."""
    return EnvConfig(hand="rigid", steps_after_clip=150, max_episode_steps=300, ball_distance=0.5,
                     adaptive_starts=True, physics=Physics(palm=True), reward=RewardConfig(form="components"))


def warm_start_steps(steps: int | None, device: torch.device) -> int:
    """--warm-start-steps, or by default 1500 on a GPU (about 7 s) and 200 on a CPU; 0 is off, less is refused."""
    if steps is not None and steps < 0:
        raise UserError(f"--warm-start-steps {steps}: must be 0 (off) or more")
    return steps if steps is not None else (1500 if device.type == "cuda" else 200)


def warm_start(actor: nn.Module, obs_norm: EmpiricalNormalization, obs: torch.Tensor, target: torch.Tensor,
               steps: int, lr: float, batch: int, seed: int, show: bool = False) -> float:
    """Fit the observation normaliser to `obs` (F, num_obs), the data's reference states, and the actor's mean on
    them to `target` (F, num_actions), their next frames' PD targets, by `steps` Adam steps of step size `lr` on
    the squared error over `batch` random frames (seeded by `seed`). Under torchrun the gradients are averaged over
    the ranks. With `show`, a progress line every 100 steps and a summary. Returns the last regression loss."""
    t0 = time.time()
    obs_norm.update(obs)
    # What never varies in the data (the ball's spin, absent from it; the skill slots) keeps a unit scale, so
    # that the first rollouts, where it does vary, do not reach the actor 300 times enlarged.
    flat = obs_norm.var < 1e-6
    obs_norm.var[flat] = 1.0
    obs_n = obs_norm.normalize(obs)
    opt = torch.optim.Adam(actor.parameters(), lr=lr)
    gen = torch.Generator(device=obs.device).manual_seed(seed)
    loss = torch.zeros((), device=obs.device)
    for k in range(steps):
        mb = torch.randint(0, obs.shape[0], (min(batch, obs.shape[0]),), device=obs.device, generator=gen)
        loss = (actor(obs_n[mb]) - target[mb]).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients_(list(actor.parameters()))
        opt.step()
        if show and (k + 1) % 100 == 0:
            end = "\n" if not sys.stdout.isatty() else ""
            print(f"\rwarm start: step {k + 1}/{steps}  regression loss {float(loss.detach()):.4g}", end=end,
                  flush=True)
    if show:
        newline = "\n" if sys.stdout.isatty() else ""  # after the progress line, which a terminal keeps
        print(f"{newline}warm start: {steps} steps, regression loss {float(loss.detach()):.4g}, "
              f"{time.time() - t0:.1f} s")
    return float(loss.detach())


CONSTANT_VAR = 1e-3
"""A skill input whose variance in the normaliser is below this never varied in the file's training: a one-hot
column seen in a share p of the samples has variance p(1 - p), so this is p < 0.1%. (The shipped files' unused
columns hold 1.6e-7 and 8e-5, residues of the normaliser's first updates; their trained columns 0.02-0.1.)"""


@torch.no_grad()
def seat_skills(obs_norm: EmpiricalNormalization, first_layers: list[nn.Linear], labels: list[int]) -> list[int]:
    """Seat a policy for a run on the skill `labels` (the run's L labels) where its training held a skill input
    constant: a label it never trained on (its one-hot column always 0) or the only label of a one-skill policy
    (always 1). Such a column is 0 after normalisation whatever the weights on it, so the network ignored it. For
    each of the run's labels with such a column, the normaliser gets the statistics of a class-balanced one-hot
    (mean 1/L, variance (1/L)(1 - 1/L)) and the first layers (the actor's, the critic's) get weight 0 on it: the
    network computes exactly what it did, for every label, and learns to tell the new labels apart from there
    (the inputs now vary, so their weights get gradients). Observations are (B, num_obs), the skill one-hot of
    skills.NUM_SLOTS last (skillmimic.envs.observations). Returns the labels seated."""
    first = obs_norm.mean.shape[0] - skills.NUM_SLOTS  # the one-hot's first column
    p = 1.0 / len(labels)
    # Constant in the file and not already what this run feeds (a one-skill run on the file's own skill: mean 1).
    seat = [lab for lab in labels
            if float(obs_norm.var[first + lab]) < CONSTANT_VAR and abs(float(obs_norm.mean[first + lab]) - p) > 1e-3]
    for lab in seat:
        c = first + lab
        obs_norm.mean[c], obs_norm.var[c] = p, p * (1.0 - p)
        for layer in first_layers:
            layer.weight[:, c] = 0.0
    return seat


@torch.no_grad()
def seat_history(obs_norm: dict[str, torch.Tensor], networks: list[dict[str, torch.Tensor]], steps: int
                 ) -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Seat the state dicts of a policy that observes no past (its observation normaliser's, and its networks' of
    skillmimic.policy.mlp: the actor's, the critic's) for a run that observes its last `steps` control steps: the
    history's inputs, steps x P numbers where P is the present part (skillmimic.envs.observations: the present
    part, the history oldest first, the skill one-hot of skills.NUM_SLOTS last), are inserted before the one-hot.
    Each past step gets the present part's normaliser statistics (mean and variance; the count is shared by all
    columns), so that its inputs are as well scaled as the present's once the weights on them move, and the first
    layers get weight 0 on all of them: the networks compute exactly what the file's did, whatever the past holds.
    Returns the widened (normaliser, networks), new dicts; the given ones are left as they were."""
    mean, var = obs_norm["mean"], obs_norm["var"]  # (num_obs,) of the file: P + NUM_SLOTS
    present = mean.shape[0] - skills.NUM_SLOTS

    def widen(x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:  # (..., P + S), (..., steps * P) -> wider
        return torch.cat((x[..., :present], past, x[..., present:]), dim=-1)

    norm = dict(obs_norm, mean=widen(mean, mean[:present].repeat(steps)), var=widen(var, var[:present].repeat(steps)))
    nets = []
    for net in networks:
        w = net["0.weight"]  # (hidden, P + S), the first layer's
        nets.append(dict(net, **{"0.weight": widen(w, w.new_zeros(w.shape[0], steps * present))}))
    return norm, nets


@torch.no_grad()
def seat_reference(net: dict[str, torch.Tensor], num_reference: int) -> dict[str, torch.Tensor]:
    """Seat the state dict of a network (skillmimic.policy.mlp: a critic, or a teacher's actor) that sees the
    observation alone for a run in which it also sees `num_reference` reference features (train_llc.py
    --critic-reference, --actor-reference; skillmimic.envs.reference_obs), which come after the observation: its
    first layer gets weight 0 on them, so that it computes exactly what it did whatever the reference, and learns
    to use it from there (the features vary, so their weights get gradients). The run's reference normaliser starts
    from its defaults and learns from the rollouts, unless the file has one. net["0.weight"] (hidden, num_obs) ->
    (hidden, num_obs + num_reference). Returns a new dict; the given one is left as it was."""
    w = net["0.weight"]  # (hidden, num_obs)
    return dict(net, **{"0.weight": torch.cat((w, w.new_zeros(w.shape[0], num_reference)), dim=-1)})


def head_labels(skill_heads: bool, run_labels: list[int], init_from_path: str | None, resume: dict | None,
                flag: str = "--init-from") -> list[int] | None:
    """The labels that own a head of a run's actor (train_llc.py --skill-heads; None: one output layer): a resumed
    run's (its checkpoint's "skill_heads"), else those of the file it starts from (--init-from) followed by the
    run's labels it lacks, in order; a new run's are its labels. A new run of one skill is refused in one line (its
    one-hot would be constant: nothing tells the heads apart, skillmimic.policy.SkillHeadsMLP)."""
    if not skill_heads:
        return None
    if resume is not None:
        return list(resume["skill_heads"])
    heads = []
    if init_from_path:
        heads = skill_heads_of(load_policy(init_from_path, "cpu", flag=flag, reference=REFERENCE_OBS_DIM).actor) or []
    elif len(run_labels) < 2:
        raise UserError(f"--skill-heads: the clips hold one skill ({run_labels[0]:03d}): no label to choose a head "
                        "by; drop the flag, or start from a file of several skills (--init-from)")
    return heads + [lab for lab in run_labels if lab not in heads]


def with_skill_heads(policy: SkillPolicy, labels: list[int]) -> SkillPolicy:
    """`policy` (a SkillPolicy, which sees no reference) with its actor's output layer one per skill: its heads
    (if any) and one for each of `labels` it lacks, seated by seat_heads (the same actions for every label). The
    policy is changed in place and returned."""
    file_heads = skill_heads_of(policy.actor)
    run_heads = (file_heads or []) + [lab for lab in labels if lab not in (file_heads or [])]
    hidden = actor_hidden(policy.actor)
    actor = actor_network(policy.num_obs, hidden, policy.num_actions, policy.num_obs, run_heads)
    actor.load_state_dict(seat_heads(policy.actor.state_dict(), hidden, file_heads, run_heads))
    policy.actor = actor.to(policy.obs_norm.mean.device)
    return policy


@torch.no_grad()
def seat_heads(net: dict[str, torch.Tensor], hidden: tuple[int, ...], file_heads: list[int] | None,
               run_heads: list[int]) -> dict[str, torch.Tensor]:
    """Seat the state dict of an actor (skillmimic.policy.actor_network, `hidden` layers) whose output layer is one
    for all (file_heads None) or one per label of file_heads (and a shared one, last) for a run whose heads are
    run_heads (file_heads first, in order: head_labels): a plain layer becomes every head, a file's head stays its
    label's, and a label new to the file starts from the file's shared head, as does the run's shared head. The
    network computes what the file's did, for every label (to float rounding: the heads are one product). Returns
    a new dict."""
    out = f"{2 * len(hidden)}"  # the output layer's index in the Sequential
    w, b = net[f"{out}.weight"], net[f"{out}.bias"]  # plain: (n_out, n_in), (n_out,); heads: (H, ...) with shared last
    if file_heads is None:
        w, b, file_heads = w[None], b[None], []  # one layer, seen as a shared head alone
    index = [file_heads.index(lab) if lab in file_heads else len(file_heads) for lab in run_heads]
    index.append(len(file_heads))  # the run's shared head: the file's
    return dict(net, **{f"{out}.weight": w[index].clone(), f"{out}.bias": b[index].clone()})


class ZeroReference(nn.Module):
    """A teacher's actor (train_llc.py --actor-reference: the observation, then num_reference reference features)
    seen as an actor of the observation alone, the reference fed as 0, for the warm start's regression on the data's
    states: with the actor's weight 0 on the reference (seat_reference) and 0 fed, those weights get no gradient
    and stay 0, and PPO then learns to use the reference. (B, num_obs) -> (B, num_actions)."""

    def __init__(self, actor: nn.Module, num_reference: int):
        super().__init__()
        self.actor, self.num_reference = actor, num_reference

    def forward(self, obs_n: torch.Tensor) -> torch.Tensor:
        return self.actor(torch.cat((obs_n, obs_n.new_zeros(obs_n.shape[0], self.num_reference)), dim=-1))


def init_from(path: str | Path, actor: nn.Module, obs_norm: EmpiricalNormalization, hidden: tuple[int, ...],
              num_obs: int, hand: str, device: torch.device, show: bool = False, critic: nn.Module | None = None,
              value_norm: EmpiricalNormalization | None = None, skill_labels: list[int] | None = None,
              history_steps: int = 0, ref_norm: EmpiricalNormalization | None = None,
              actor_reference: bool = False) -> SkillPolicy:
    """Copy the actor and observation normaliser of the exported policy at `path` into `actor` and `obs_norm`
    (of a network with `hidden` layers, for `num_obs` observations of the `hand` model, `history_steps` of them
    past control steps), and its critic and value normaliser into `critic` and `value_norm` when the file carries
    them (then `critic_state` of the policy returned is not empty), so that a run continues with the values it had
    learned. A file that observes no past continues in a run with a history: its inputs are seated (seat_history).
    `ref_norm` is the run's reference normaliser when its critic also sees the reference (--critic-reference; None:
    it does not): a file's critic that does not see it is seated for it (seat_reference, the normaliser left at its
    defaults), one that sees it is loaded with its reference normaliser; a file's critic that sees the reference is
    not carried into a run whose critic does not (the run's critic starts fresh, and the line shown says why).
    With `actor_reference` (a teacher's run, --actor-reference, which needs ref_norm) a file's actor that does not
    see the reference is seated for it (seat_reference) and one that does is loaded with its reference normaliser;
    a teacher's file is refused by a run whose actor does not see the reference. An actor whose output layer is one
    per skill (`actor` a SkillHeadsMLP, --skill-heads) takes a file's plain output layer or heads as seat_heads says;
    a file's heads are refused by a run of one output layer.
    For a run on `skill_labels` (the run's labels) the skill inputs the file's training held constant are then
    seated for them (seat_skills, on the widened observation). One-line error if it does not fit (another hand or
    model, another history unless the file's is none, another network) or holds a NaN or Inf. Returns the policy
    read, its actor and critic_state as in the file."""
    policy = load_policy(path, device, hand=hand, reference=REFERENCE_OBS_DIM)  # a teacher's of another size: a line
    if policy.num_reference and not actor_reference:
        raise UserError(f"--init-from {path}: its actor sees the reference motion (a teacher); continue it with "
                        "--actor-reference --critic-reference")
    history = policy.history_steps == 0 and history_steps > 0  # the file's network widened for the run's past
    if policy.history_steps != history_steps and not history:  # before the sizes, which it decides: the flag
        raise UserError(f"--init-from {path}: the policy observes its last {policy.history_steps} control steps "
                        f"(--env.history.steps {policy.history_steps}), this run {history_steps}; pass "
                        f"--env.history.steps {policy.history_steps}")
    past = history_steps * OBS_DIM if history else 0  # the run's inputs the file has no columns for
    checkpoint.check_entries(policy.info, {"num_obs": num_obs - past}, str(path))
    if tuple(policy.info["hidden"]) != tuple(hidden):
        raise UserError(f"{path}: the policy's hidden layers are {tuple(policy.info['hidden'])}, this run's "
                        f"{tuple(hidden)}; pass --hidden {' '.join(map(str, policy.info['hidden']))}")
    sees_reference = bool(policy.info.get("critic_reference", False))  # the file's critic (files before it: no)
    has_critic = {"critic", "value_norm", *(["ref_norm"] if sees_reference else [])} <= set(policy.critic_state)
    left = has_critic and ref_norm is None and sees_reference  # a privileged critic cannot serve a plain run
    carried = critic is not None and value_norm is not None and has_critic and not left
    if carried and sees_reference:  # features of another version of reference_obs: one line, not a load error
        want, got = ref_norm.mean.shape[0], policy.critic_state["ref_norm"]["mean"].shape[0]
        if want != got:
            raise checkpoint.CheckpointError(f"{path}: it sees {got} reference features, this checkout's "
                                             f"{want} (skillmimic.envs.reference_obs)")
    file_heads, run_heads = skill_heads_of(policy.actor), skill_heads_of(actor)
    if file_heads is not None and run_heads is None:
        raise UserError(f"--init-from {path}: its actor has an output layer for each skill "
                        f"({', '.join(f'{lab:03d}' for lab in file_heads)}); continue it with --skill-heads")
    norm_state, nets = policy.obs_norm.state_dict(), [policy.actor.state_dict()]
    if run_heads is not None:
        nets[0] = seat_heads(nets[0], hidden, file_heads, run_heads)
    if carried:
        nets.append(policy.critic_state["critic"])
    if history:
        norm_state, nets = seat_history(norm_state, nets, history_steps)
    seat_ref = carried and ref_norm is not None and not sees_reference
    if seat_ref:  # after the history's seating, which widens the observation's part before the one-hot
        nets[1] = seat_reference(nets[1], ref_norm.mean.shape[0])
    seat_actor = actor_reference and not policy.num_reference  # a teacher started from a skill policy
    if seat_actor:
        nets[0] = seat_reference(nets[0], ref_norm.mean.shape[0])
    actor.load_state_dict(nets[0])
    obs_norm.load_state_dict(norm_state)
    if carried:
        critic.load_state_dict(nets[1])
        value_norm.load_state_dict(policy.critic_state["value_norm"])  # of the return: no observation in it
    if (carried and sees_reference) or policy.num_reference:
        ref_norm.load_state_dict(policy.critic_state["ref_norm"])
    if not carried:
        policy.critic_state = {}
    seated = []
    if skill_labels is not None:
        firsts = [actor[0]] + ([critic[0]] if carried else [])
        seated = seat_skills(obs_norm, firsts, list(skill_labels))
    if show:
        critic_text = "actor and critic" if carried else "actor; new critic"
        if left:
            critic_text += (": the file's critic sees the reference motion (--critic-reference), this run's does "
                            "not")
        print(f"init from {path} ({critic_text})"
              + (f"; history inputs seated for {history_steps} past control steps" if history else "")
              + ("; reference inputs seated for the critic" if seat_ref else "")
              + ("; reference inputs seated for the actor (a teacher)" if seat_actor else "")
              + (f"; skill inputs seated for {', '.join(f'{lab:03d}' for lab in seated)}" if seated else "")
              + ("; its output layer copied into each skill's head" if run_heads is not None and file_heads is None
                 else ""))
    return policy


def reference_view(env, critic_reference: bool, anchor_reference: bool) -> Callable[[], torch.Tensor | None]:
    """What train_llc.py's critic (and a teacher's actor) sees of the reference each step: env's reference_obs
    (--critic-reference), laid onto the humanoid's position with --anchor-reference (reference_obs.anchor; only with
    --actor-reference: check_schedule), or None without a privileged critic. -> a function of no argument returning
    (N, REFERENCE_OBS_DIM) or None."""
    if anchor_reference:
        return lambda: anchor(env.reference_obs())
    return env.reference_obs if critic_reference else lambda: None


def check_schedule(args) -> None:
    """train_llc.py's counts of iterations before and while the actor starts to move (`args`: its Args), each 0 or
    more, --lr-warmup-iterations only with a fixed learning rate, --actor-reference only with --critic-reference
    (whose reference the actor shares) and --anchor-reference only with --actor-reference, refused in one line
    naming the flag."""
    check_counts(args, "critic_warmup_iterations", "actor_prime_iterations", "lr_warmup_iterations", minimum=0)
    if args.lr_warmup_iterations and args.desired_kl is not None:
        raise UserError("--lr-warmup-iterations needs a fixed learning rate: --desired-kl sets the step size itself")
    if args.actor_reference and not args.critic_reference:
        raise UserError("--actor-reference needs --critic-reference (the actor shares the critic's reference)")
    if args.anchor_reference and not args.actor_reference:
        raise UserError("--anchor-reference needs --actor-reference (it lays the reference a teacher's actor sees)")


def checked_args(args, train_format: str, overrides: tuple[str, ...], defaults: plan.Defaults) -> tuple:
    """train_llc.py's arguments (`args`: its Args), everything a user can get wrong checked before anything is
    built, each as one line: the counts, the schedule's (check_schedule), the distillation's options
    (skillmimic.distill.check_options); a resumed run's settings from its checkpoint (runs.resume_run: `overrides`
    are the flags it may change, `train_format` the checkpoint's) and that checkpoint's observation (of its history
    steps) and hand as this checkout has them; --iterations by device (plan.iterations with `defaults`).
    -> (args, the checkpoint of a resumed run or None)."""
    check_counts(args, "num_envs", "envs_per_gpu", "num_steps", "iterations", "num_minibatches", "update_epochs",
                 "checkpoint_every")
    check_schedule(args)  # the warm-ups' and priming's counts
    check_options(args.teachers, args.distill_coef, args.distill_ppo, args.distill_teacher_share,
                  args.distill_teacher_iterations, args.distill_balance, args.distill_ppo_labels,
                  args.distill_ppo_weight)
    args, resume = runs.resume_run(args, train_format, overrides)
    if resume is not None:  # (files before the history was recorded: none; before hands were: the full hand)
        checkpoint.check_entries(resume, {"num_obs": skill_obs_dim(args.env.history.steps)}, args.resume)
        check_model(args.resume, args.env.hand, resume.get("model_sha256"), resume["num_actions"])
    return dataclasses.replace(args, iterations=plan.iterations(args.iterations, args.device, resume, defaults)), resume


def warmup_lr(lr: float, iterations: int, actor_iteration: int) -> float:
    """The step size of the `actor_iteration`-th iteration in which the actor moves (1-based; 0 or less: before it
    does) under train_llc.py --lr-warmup-iterations `iterations` (a fixed rate, no --desired-kl): lr x k /
    iterations, rising linearly to lr at the last of them (0 iterations: lr throughout). Why: a policy continued on
    fewer skills than its file was trained on moved by a KL of 25-38 in its first actor iteration although primed
    (all-skills round 3's C, the dribble alone continuing a 19-skill file: its reward halved and took 53 million
    samples to come back). With the skills narrowed, the gradients agree from minibatch to minibatch, and Adam,
    whose steps have the learning rate's size whatever the gradient's, moves every weight the full step the same
    way; with a standard deviation of 0.055 on 66 actions, action means shifted by 0.1 each are a KL of over
    100. A critic's warm-up did not stop it (on the CPU: a KL of 67 after three iterations of the critic
    alone against 25 without)."""
    if iterations <= 0:
        return lr
    return lr * min(1.0, max(actor_iteration, 1) / iterations)


def adapt_lr(optimizer: torch.optim.Optimizer, kl: float, desired_kl: float) -> None:
    """train_llc.py --desired-kl, rsl_rl's rule after each minibatch: the step size / 1.5 (down to 1e-6) when the
    minibatch's KL from the rollout's policy is over twice desired_kl, x 1.5 (up to 1e-2) when under half of it."""
    lr = optimizer.param_groups[0]["lr"]
    if kl > 2.0 * desired_kl:
        lr = max(lr / 1.5, 1e-6)
    elif kl < 0.5 * desired_kl:
        lr = min(lr * 1.5, 1e-2)
    for g in optimizer.param_groups:
        g["lr"] = lr


def start(agent: nn.Module, env, resume: dict | None, init_from_path: str | None, warm_start_steps_arg: int | None,
          lr: float, batch: int, seed: int, critic_warmup_iterations: int, hidden: tuple[int, ...],
          device: torch.device, show: bool = False, actor_reference: bool = False,
          anchor_reference: bool = False) -> tuple[dict, int]:
    """A new run's first actor and critic (`agent`: actor, obs_norm, critic, value_norm, and ref_norm, None unless
    its critic sees the reference): the exported policy's at `init_from_path`, its critic too when the file carries
    one that the run can take (init_from), with a note when the file's run stood further on in a mass curriculum
    than this run starts its own (MassCurriculum.note); else the actor fitted to `env`'s demonstration
    (warm_start, warm_start_steps(warm_start_steps_arg) Adam steps; a teacher's actor, `actor_reference`, fed the
    reference as 0 there: ZeroReference); a file whose teacher saw the reference anchored is refused by a run that
    does not anchor it (`anchor_reference`, --anchor-reference). A resumed run (`resume`, its checkpoint) is
    left to Run.restore. Returns (what came before this run, skillmimic.lineage, for every policy file it writes;
    the iterations in which the critic learns alone: critic_warmup_iterations, 0 when the critic came with the
    file)."""
    steps = warm_start_steps(warm_start_steps_arg, device)  # checked for a resumed run too
    if resume is None and init_from_path:
        policy = init_from(init_from_path, agent.actor, agent.obs_norm, hidden, env.num_obs, env.spec.hand, device,
                           show=show, critic=agent.critic, value_norm=agent.value_norm,
                           skill_labels=env.skill_labels.tolist(), history_steps=env.cfg.history.steps,
                           ref_norm=agent.ref_norm, actor_reference=actor_reference)
        if policy.reference_anchor and not anchor_reference:  # (a plain teacher may start an anchored one)
            raise UserError(f"--init-from {init_from_path}: its actor sees the reference laid onto its own position; "
                            "continue it with --anchor-reference")
        note = env.cfg.mass_curriculum.note(policy.info.get("mass_curriculum"), policy.physics.ball_mass,
                                            f"--init-from {init_from_path}")
        if show and note:  # not an error: a run may mean to start its curriculum again
            print(note)
        warmup = 0 if policy.critic_state else critic_warmup_iterations
        return lineage.before(None, init_from_path, policy.info), warmup
    if resume is None and steps > 0:
        actor = ZeroReference(agent.actor, agent.ref_norm.mean.shape[0]) if actor_reference else agent.actor
        warm_start(actor, agent.obs_norm, *env.demonstration(), steps, lr, batch, seed, show=show)
    return lineage.before(resume, None, None), critic_warmup_iterations
