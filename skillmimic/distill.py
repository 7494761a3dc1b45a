"""Teachers for distillation (train_llc.py --teachers): exported skill policies whose actors say, for the skills they
were trained on, which action the policy being trained (the student) should take in the student's own states.

DAgger, as InterMimic, PULSE and MaskedMimic distil: the student acts, every teacher labels each step of the
environments whose skill it teaches with its action mean, and the update adds the squared distance of the student's
action means from those labels to PPO's loss (train_llc.ppo_loss). Why: one policy trained by PPO on all 19 skills
learned the shots but not the skills that need the ball kept (all-skills rounds 1-2, docs/llc_recipe.md), while the
layup, trained alone, was learned (skillmimic/assets/llc_layup.pt). A teacher sees what the student sees (its own
state, the ball and the skill one-hot), so a student can take a skill from a policy trained on that skill alone;
supervision needs far fewer samples than reinforcement (../shared/research: PHC's offline distillation reaches 97% in
100 epochs). A teacher may also see the reference motion (train_llc.py --actor-reference: a tracker, as the
fastest imitation systems train theirs): it is fed the environments' reference features, which the student never
sees.

Which teacher teaches which skill: each file's recorded `skill_labels` (the skills it was trained on); where two
files name the same skill, the later one teaches it. A skill no teacher names is learned by PPO alone.

Who acts: the student, except (--distill-teacher-share, with the surrogate off) in a share of the environments,
drawn anew each iteration, where the teachers play their action means; the share falls linearly to 0 over a number
of iterations (teacher_share), as InterMimic's share of teacher-driven steps falls from 1 to 0.
"""

from __future__ import annotations

import math

from pathlib import Path
from typing import Callable

import torch

from skillmimic import skills
from skillmimic.envs.observations import OBS_DIM, SKILL_OBS_DIM, skill_obs_dim
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM, seen_by
from skillmimic.errors import UserError, check_finite_nonnegative
from skillmimic.policy import SkillPolicy, check_action_scale, load_policy


def check_options(teachers: tuple[str, ...], coef: float, ppo: bool, share: float, share_iterations: int,
                  balance: bool = False, ppo_labels: tuple[int, ...] = (), ppo_weight: float = 1.0) -> None:
    """train_llc.py's distillation flags, each refused in one line before anything is built: the teachers' files
    exist (they are read once the environment is built), the weight is 0 or more, the teachers' share of the acting
    is within [0, 1] and only with --teachers and --no-distill-ppo (the surrogate needs the policy's own actions),
    --distill-balance only with --teachers, --distill-ppo-labels only with --teachers and the surrogate, each a skill
    slot (0-63) once (RolloutLabels checks they are the run's skills), --distill-ppo-weight above 0, other than 1 only
    with --distill-ppo-labels."""
    check_finite_nonnegative(coef, "--distill-coef", "0 or more")
    if balance and not teachers:
        raise UserError("--distill-balance needs --teachers (it weighs the taught skills' samples)")
    if ppo_labels and (not teachers or not ppo):
        raise UserError("--distill-ppo-labels needs --teachers and PPO's surrogate (not --no-distill-ppo)")
    for label in ppo_labels:
        if not 0 <= label < skills.NUM_SLOTS or ppo_labels.count(label) > 1:
            raise UserError(f"--distill-ppo-labels {label}: each a skill label from 0 to {skills.NUM_SLOTS - 1}, once")
    if not (math.isfinite(ppo_weight) and ppo_weight > 0):
        raise UserError(f"--distill-ppo-weight {ppo_weight}: must be above 0 (no surrogate: --no-distill-ppo)")
    if ppo_weight != 1.0 and not ppo_labels:
        raise UserError("--distill-ppo-weight needs --distill-ppo-labels (the skills whose samples it weighs)")
    if not 0.0 <= share <= 1.0:  # NaN fails too
        raise UserError(f"--distill-teacher-share {share}: must be within [0, 1]")
    if share > 0 and (not teachers or ppo):
        raise UserError("--distill-teacher-share needs --teachers and --no-distill-ppo (PPO's surrogate needs the "
                        "policy's own actions)")
    if share_iterations < 0:
        raise UserError(f"--distill-teacher-iterations {share_iterations}: must be at least 0")
    for path in teachers:
        if not Path(path).is_file():
            raise UserError(f"--teachers: {path}: no such file (an exported policy, policy.pt)")


class Teachers:
    """Teacher policies on `device`, and which one teaches each of the 64 skill slots."""

    def __init__(self, paths: tuple[str, ...], num_obs: int, hand: str, device: torch.device,
                 run_labels: list[int], action_scale: float, reference: Callable[[], torch.Tensor] | None = None):
        """Load the policy files at `paths` for a run whose observation has `num_obs` inputs on the model of `hand`,
        training the skills `run_labels` with actions scaled by `action_scale` into PD targets; `reference` gives
        the reference features of the environments' present state (their reference_obs) to teachers whose actor
        sees the reference motion (train_llc.py --actor-reference). A student that observes its past
        (--env.history.steps K) may learn from a teacher that observes fewer past steps (none, or k < K): the teacher
        is given its part of the student's observation (teacher_columns). A file that does not fit (another
        observation, more past steps than the run's, another hand, model, action scale or reference size), records
        no skill labels, or teaches none of the run's skills is refused with one line naming --teachers."""
        self.reference = reference
        self.policies: list[SkillPolicy] = []
        self.columns: list[torch.Tensor | None] = []  # per teacher: the student's observation columns it sees
        self.by_label = torch.full((skills.NUM_SLOTS,), -1, dtype=torch.long)  # (64,) teacher index, -1: none
        run_steps = (num_obs - SKILL_OBS_DIM) // OBS_DIM if num_obs > SKILL_OBS_DIM else 0  # the student's K
        for path in paths:
            policy = load_policy(path, device, num_obs=skill_obs_dim, hand=hand, flag="--teachers",
                                 reference=REFERENCE_OBS_DIM)  # a skill policy's observation for its own past
            if policy.history_steps > run_steps or skill_obs_dim(run_steps) != num_obs:
                raise UserError(f"--teachers: {path}: made for num_obs={policy.num_obs} (its last "
                                f"{policy.history_steps} control steps), this run has num_obs={num_obs} (its last "
                                f"{run_steps}): a teacher may observe fewer past steps than the run, not more")
            self.columns.append(None if policy.history_steps == run_steps
                                else teacher_columns(run_steps, policy.history_steps).to(device))
            check_action_scale(policy, action_scale, f"--teachers: {path}", "this run's")
            if policy.num_reference and reference is None:
                raise UserError(f"--teachers: {path}: its actor sees {policy.num_reference} reference features, "
                                "and these teachers are fed none")
            labels = policy.info.get("skill_labels")
            if not labels:
                raise UserError(f"--teachers: {path}: records no skill labels (written before policy files did), so "
                                "it cannot say which skill it teaches")
            taught = [lab for lab in labels if lab in run_labels]
            if not taught:
                raise UserError(f"--teachers: {path}: teaches {', '.join(f'{lab:03d}' for lab in labels)}, none of "
                                f"this run's skills ({', '.join(f'{lab:03d}' for lab in run_labels)})")
            self.by_label[taught] = len(self.policies)
            self.policies.append(policy)
        self.by_label = self.by_label.to(device)
        self.names = [Path(p).name for p in paths]

    def describe(self, run_labels: list[int]) -> str:
        """One line: which file teaches which of the run's skills, and which skills no file teaches."""
        parts = []
        for k, name in enumerate(self.names):
            labels = [lab for lab in run_labels if int(self.by_label[lab]) == k]
            if labels:
                parts.append(f"{name} teaches {', '.join(f'{lab:03d}' for lab in labels)}")
        alone = [lab for lab in run_labels if int(self.by_label[lab]) < 0]
        return ("distilling: " + "; ".join(parts)
                + (f"; PPO alone for {', '.join(f'{lab:03d}' for lab in alone)}" if alone else ""))

    @torch.no_grad()
    def means(self, obs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The teachers' action means for the student's observations obs (N, num_obs) of environments playing the
        skills `labels` (N,) long -> (means (N, num_actions), taught (N,) float: 1 where a teacher teaches that
        skill, else 0 and its mean 0). Every teacher runs on every environment and each keeps its own (no host
        sync). Teachers that see the reference get the environments' present reference features (read once)."""
        teacher = self.by_label[labels]  # (N,)
        mu = torch.zeros(obs.shape[0], self.policies[0].num_actions, device=obs.device)
        ref = self.reference() if any(p.num_reference for p in self.policies) else None  # (N, REFERENCE_OBS_DIM)
        for k, (policy, columns) in enumerate(zip(self.policies, self.columns)):
            seen = obs if columns is None else obs.index_select(1, columns)  # (N, the teacher's num_obs)
            fed = seen_by(policy, ref) if policy.num_reference else None  # as the teacher was trained to see it
            mu = torch.where((teacher == k).unsqueeze(-1), policy(seen, fed), mu)
        return mu, (teacher >= 0).float()


def teacher_columns(run_steps: int, steps: int) -> torch.Tensor:
    """The columns of a student's observation (skillmimic.envs.observations: its present part, its last `run_steps`
    control steps oldest first, the skill one-hot) that make the observation of a teacher observing its last
    `steps` <= run_steps: the present part, the newest `steps` of the past, the one-hot. -> (skill_obs_dim(steps),)
    long."""
    past = torch.arange(OBS_DIM + (run_steps - steps) * OBS_DIM, OBS_DIM + run_steps * OBS_DIM)
    onehot = torch.arange(skill_obs_dim(run_steps) - skills.NUM_SLOTS, skill_obs_dim(run_steps))
    return torch.cat([torch.arange(OBS_DIM), past, onehot])


def skill_weights(taught: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """--distill-balance: each skill taught in a batch weighs the same in the distillation loss, whatever its share
    of the samples. taught (B,) 1 where a teacher teaches the sample's skill, labels (B,) long its skill slot ->
    weights (B,): a taught sample of skill l gets taught.sum() / (K x n_l), n_l the taught samples of l and K the
    skills taught in the batch, so each skill's weights add up to taught.sum() / K and all of them to taught.sum()
    (the loss's weighted mean keeps its scale); untaught samples 0. Why: with labels drawn per episode, a skill
    whose episodes end early holds few of a batch's samples (on all 19 skills the dribble, the pickup and the layup,
    which fall within 20-50 steps, a few percent), and the mean over samples leaves it to the others: in all-skills
    round 6 the student's distance from the dribble's teacher, read on its own states, rose from 0.0009-0.0012 to
    0.0048-0.0051 while the batch's fell to 0.0005 (docs/llc_recipe.md)."""
    counts = torch.zeros(skills.NUM_SLOTS, device=taught.device).index_add_(0, labels, taught)  # (64,)
    present = (counts > 0).sum().clamp(min=1)
    return taught * taught.sum() / (present * counts[labels].clamp(min=1.0))


def skill_distances(mu: torch.Tensor, teacher_mu: torch.Tensor, taught: torch.Tensor, labels: torch.Tensor,
                    slots: list[int]) -> dict[str, torch.Tensor]:
    """The student's distance from its teachers per taught skill, on the rollout's own states: mu, teacher_mu (B,
    num_actions) the student's and the teachers' action means, taught (B,), labels (B,) long -> {'distill_mse_NNN':
    the mean over skill NNN's taught samples of the squared distance (mean over actions), 0 where the batch holds
    none} for each slot in `slots` (progress.csv's columns, one a taught skill)."""
    d = (mu - teacher_mu).square().mean(-1) * taught  # (B,)
    sums = torch.zeros(skills.NUM_SLOTS, device=mu.device).index_add_(0, labels, d)
    counts = torch.zeros(skills.NUM_SLOTS, device=mu.device).index_add_(0, labels, taught)
    means = sums / counts.clamp(min=1.0)
    return {f"distill_mse_{lab:03d}": means[lab] for lab in slots}


def teacher_share(start: float, iteration: int, iterations: int) -> float:
    """The share of the environments the teachers play at `iteration` (1-based): `start`, falling linearly to 0 at
    iteration `iterations` + 1 (0 iterations: `start` throughout)."""
    if iterations <= 0:
        return start
    return start * max(0.0, 1.0 - (iteration - 1) / iterations)


class RolloutLabels:
    """A rollout's distillation labels (train_llc.py --teachers), its buffers allocated once, (num_steps, num_envs,
    ...): at each step the teachers' action means where they teach the skill played, and (--distill-teacher-share)
    the environments they play this iteration; at the update the batch's labels, the loss's weights (--distill-balance:
    skill_weights), where PPO's surrogate applies (--distill-ppo-labels: `ppo_labels`, skills of `run_labels`) and
    each taught skill's distance (skill_distances)."""

    def __init__(self, teachers: Teachers, num_steps: int, num_envs: int, num_actions: int, run_labels: list[int],
                 device: torch.device, share: float = 0.0, share_iterations: int = 0, balance: bool = False,
                 ppo_labels: tuple[int, ...] = (), ppo_weight: float = 1.0):
        self.teachers, self.share, self.share_iterations, self.balance = teachers, share, share_iterations, balance
        self.ppo_weight = ppo_weight
        for label in ppo_labels:
            if label not in run_labels:
                raise UserError(f"--distill-ppo-labels {label}: not a skill of this run's clips "
                                f"({' '.join(f'{lab:03d}' for lab in run_labels)})")
        self.ppo_labels = torch.tensor(ppo_labels, dtype=torch.long, device=device) if ppo_labels else None
        self.teacher_mu = torch.zeros(num_steps, num_envs, num_actions, device=device)
        self.taught = torch.zeros(num_steps, num_envs, device=device)
        self.label = torch.zeros(num_steps, num_envs, dtype=torch.long, device=device)  # the skill slot played
        by_label = teachers.by_label.tolist()
        self.slots = [lab for lab in run_labels if by_label[lab] >= 0]  # progress.csv's distill_mse_NNN columns
        self.driven: torch.Tensor | None = None  # (num_envs,) bool: the environments the teachers play

    def begin(self, iteration: int) -> float:
        """Draw the environments the teachers play at `iteration` (1-based) -> their share (teacher_share)."""
        share = teacher_share(self.share, iteration, self.share_iterations)
        n = self.taught.shape[1]
        self.driven = torch.rand(n, device=self.taught.device) < share if share > 0 else None
        return share

    def record(self, step: int, obs: torch.Tensor, labels: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Label step `step`: obs (N, num_obs) the environments' observations, labels (N,) long the skills played,
        action (N, num_actions) the policy's -> the action to take: the teachers' means in the environments they play
        where they teach (the buffers keep what the teachers say; the rollout keeps the policy's own action)."""
        self.label[step] = labels
        self.teacher_mu[step], self.taught[step] = self.teachers.means(obs, labels)
        if self.driven is None:
            return action
        return torch.where((self.driven & (self.taught[step] > 0)).unsqueeze(-1), self.teacher_mu[step], action)

    def batch(self, mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                                                 dict[str, torch.Tensor]]:
        """The rollout flattened for the update, mu (B, num_actions) the policy's means at the rollout -> (the
        teachers' means (B, num_actions), the loss's weights (B,): 1 where taught, or skill_weights with balance, the
        surrogate's weights (B,): --distill-ppo-weight on the samples of --distill-ppo-labels' skills, else 0 (None
        without them: 1 on every sample), and each taught skill's distance by its column name)."""
        teacher_mu, taught = self.teacher_mu.reshape(mu.shape), self.taught.flatten()
        label = self.label.flatten()
        stats = skill_distances(mu, teacher_mu, taught, label, self.slots)
        ppo = None if self.ppo_labels is None else torch.isin(label, self.ppo_labels).float() * self.ppo_weight
        return teacher_mu, skill_weights(taught, label) if self.balance else taught, ppo, stats


def load_teachers(paths: tuple[str, ...], env, device: torch.device, show: bool = False) -> Teachers | None:
    """The teachers of a run in `env` (an ImitationEnv: its observation size, hand, skills and action scale), None
    without any; with `show`, the line saying which file teaches which skill."""
    if not paths:
        return None
    labels = env.skill_labels.tolist()
    teachers = Teachers(paths, env.num_obs, env.spec.hand, device, labels, env.cfg.action_scale, env.reference_obs)
    if show:
        print(teachers.describe(labels))
    return teachers
