"""Offline distillation: one skill policy fitted to several others on their own states, then written as a policy
file that train_llc.py continues and the evaluation reads.

    python -m skillmimic.offline_distill --init-from ALL.pt --teachers ALL.pt DRIBBLE.pt LAYUP.pt --out OUT.pt
    python -m skillmimic.offline_distill --init-from OUT.pt --teachers ... --states STATES.pt --out OUT2.pt

(ALL.pt a policy of all 19 skills, e.g. results/skills4/A_policy.pt; DRIBBLE.pt and LAYUP.pt the policies of one
skill each, e.g. results/skills7/I_policy.pt and skillmimic/assets/llc_layup.pt; --save-states STATES.pt in the
first keeps what it collected, so that the second fits again without simulating.)

Why (docs/llc_recipe.md, "All skills, round 7"): a student taught the dribble alone by DAgger learned it (59-63%),
while a student taught all 19 skills at once did not (1.6%): in DAgger a skill is learned at the pace of its share
of the simulated samples, and the skills that need a teacher end their episodes early and hold a few percent of
them. Here simulating and fitting are apart, so every skill gets the same share of the fitting whatever its
episodes' length, and the states are used for as many passes as wanted (PHC distils its imitators offline; the
research brief in ../shared/research).

1. Collect: in the training environment (reference-state starts, early termination; `--env.*` as train_llc.py's),
   each environment is played by the teacher of its skill, its action mean plus Gaussian noise of --action-noise
   (so that the states cover the neighbourhood of the teacher's own, as DART does), and each step's observation
   (the student's: state, ball, history if any, skill one-hot) is kept with the teacher's action mean, until every
   skill has --states-per-skill of them. The labels are drawn so that the skills share the samples equally.
2. Fit: the student's actor (--init-from's; its observation normaliser kept as it is) is fitted by Adam to the
   teachers' means, the squared distance averaged over the actions, for --epochs passes in shuffled minibatches;
   after each pass a held-out tenth gives each skill's distance.
3. Write: the student's file (--out) is --init-from's with the fitted actor: its critic and normalisers, so that
   `train_llc.py --init-from OUT --teachers ...` goes on by DAgger on the student's own states. It records the
   teachers, the states and the held-out distances ("offline_distill"), and its history counts the collected steps.

Teachers are read as train_llc.py's --teachers (skillmimic.distill.Teachers): each file teaches the skills it
records, the later file where two name one, a teacher that sees the reference is fed it, one that observes fewer
past steps than the student gets its part of the observation. Every skill of --motion-dir needs a teacher.

A student that observes no past may be distilled with --env.history.steps K (K past control steps observed, so that
the observation, not the network, decides whether the teachers' actions are predictable from the student's past):
its inputs are seated as train_llc.py --init-from seats them (skillmimic.recipe.seat_history: it starts out
computing what its file did), the states are collected with the history, and the file written observes it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import torch

from skillmimic import DATA, checkpoint, lineage, skills
from skillmimic.cli import check_counts, run_command
from skillmimic.device import resolve_device
from skillmimic.distill import load_teachers
from skillmimic.distributed import Ranks, StopRequest, say
from skillmimic.envs.history import History
from skillmimic.envs.imitation import EnvConfig, ImitationEnv, load_motions
from skillmimic.envs.label_sampling import LabelSampling
from skillmimic.envs.observations import OBS_DIM
from skillmimic.errors import UserError
from skillmimic.outputs import check_file
from skillmimic.plan import time_left
from skillmimic.policy import POLICY_FORMAT, SkillPolicy, actor_hidden, load_policy, skill_heads_of
from skillmimic.recipe import seat_history, training_env, with_skill_heads


@dataclasses.dataclass
class Args:
    init_from: str
    """The student: an exported skill policy that sees no reference (its actor is fitted; its critic and
    normalisers are carried)."""
    teachers: tuple[str, ...]
    """Exported policies, each teaching the skills its file records (the later file where two name one)."""
    out: str = "runs/offline_distill/policy.pt"
    """The student's policy file to write."""
    motion_dir: str = str(DATA)
    """Clips of the skills to distil (every skill among them needs a teacher)."""
    env: EnvConfig = dataclasses.field(default_factory=training_env)
    """The environment of the collection: train_llc.py's by default (skillmimic.recipe.training_env), its --env.*
    flags the same (loops, terminations); the model, physics, action scaling and history are the student's file's
    (the history --env.history.steps' where the file observes no past: with_history), and the labels are drawn so
    that the skills share the samples equally."""
    num_envs: int = 256
    """Environments played at once while collecting."""
    states_per_skill: int = 20_000
    """States kept of each skill."""
    action_noise: float = 0.05
    """Std of the Gaussian noise added to the teachers' action means while collecting (0: their means)."""
    epochs: int = 10
    """Passes over the states."""
    batch: int = 4096
    """States per minibatch."""
    learning_rate: float = 1e-4
    """Adam's step size."""
    device: str = "auto"
    """'cuda', 'cpu' or 'auto'."""
    seed: int = 0
    """Seed of the environments, the noise, the held-out split and the minibatches."""
    save_states: str | None = None
    """Also write the collected states to this file (to fit again without simulating: --states)."""
    states: str | None = None
    """Fit on the states of this file (written by --save-states) instead of collecting; the teachers named must be
    those that labelled them."""
    skill_heads: bool = False
    """Before the fit, the student's output layer becomes one per skill (train_llc.py --skill-heads): its heads, if
    it has any, and one for each skill of --motion-dir it lacks, each seated from its file (recipe.with_skill_heads:
    the same actions as before); the file written records them."""


@dataclasses.dataclass
class States:
    """What the collection kept: obs (S, num_obs) the student's observations, mu (S, num_actions) the teachers'
    action means there, label (S,) long the skill each was played with; steps, the control steps simulated."""
    obs: torch.Tensor
    mu: torch.Tensor
    label: torch.Tensor
    steps: int


def with_history(student: SkillPolicy, steps: int) -> SkillPolicy:
    """The student, a policy that observes no past, seated for `steps` past control steps as train_llc.py
    --init-from seats it (recipe.seat_history): its observation (num_obs,) grows by steps x OBS_DIM inputs before
    the skill one-hot, each past step normalised by the present part's statistics, and the first layers of its actor
    and carried critic get weight 0 on them, so that it computes what its file did. -> a new SkillPolicy (num_obs +
    steps * OBS_DIM observations) on the student's device, with its file's physics, ball starts, info and critic."""
    nets = [student.actor.state_dict()] + ([student.critic_state["critic"]] if "critic" in student.critic_state else [])
    norm, nets = seat_history(student.obs_norm.state_dict(), nets, steps)
    wide = SkillPolicy(student.num_obs + steps * OBS_DIM, student.num_actions, actor_hidden(student.actor),
                       student.action_scale, student.action_clip, student.hand, student.model_sha256, steps,
                       skill_heads=skill_heads_of(student.actor))
    wide.actor.load_state_dict(nets[0])
    wide.obs_norm.load_state_dict(norm)
    wide.physics, wide.ball_starts = student.physics, student.ball_starts
    wide.info, wide.path = student.info, student.path
    wide.critic_state = dict(student.critic_state, **({"critic": nets[1]} if len(nets) > 1 else {}))
    return wide.to(student.obs_norm.mean.device).eval()


def collect(env: ImitationEnv, teachers, per_skill: int, noise: float, gen: torch.Generator,
            show: bool = True) -> States:
    """Play env (auto-restarting, its labels drawn evenly) with each environment's skill's teacher, its mean plus
    Gaussian noise of std `noise`, keeping each step's observation and the teacher's mean until every skill of env
    has `per_skill` states."""
    labels = env.skill_labels.tolist()
    want = torch.zeros(skills.NUM_SLOTS, dtype=torch.long, device=env.device)  # (64,) states still wanted per slot
    want[labels] = per_skill
    kept: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    total, steps, start = per_skill * len(labels), 0, time.perf_counter()
    obs = env.reset()
    while int(want.sum()) > 0:
        label = env.skill.argmax(-1)  # (N,) the slot each environment plays
        mu, _ = teachers.means(obs, label)  # (N, num_actions)
        need = want[label] > 0
        if need.any():
            keep = torch.zeros_like(need)  # at most the wanted count of each slot this step
            for slot in label[need].unique().tolist():
                mine = need & (label == slot)
                keep |= mine & (torch.cumsum(mine.long(), 0) <= want[slot])
            kept.append((obs[keep].clone(), mu[keep].clone(), label[keep].clone()))
            want -= torch.bincount(label[keep], minlength=skills.NUM_SLOTS)
        action = mu + noise * torch.randn(mu.shape, device=mu.device, generator=gen) if noise > 0 else mu
        obs, *_ = env.step(action)
        steps += env.num_envs
        if show and steps // env.num_envs % 50 == 0:
            done = total - int(want.sum())
            print(f"collect: {done:,} / {total:,} states, {steps:,} steps  "
                  f"{time_left(time.perf_counter() - start, done, total - done)}", flush=True)
    o, m, lab = (torch.cat(x) for x in zip(*kept))
    return States(o, m, lab, steps)


STATES_FORMAT = "skillmimic-distill-states/1"


def save_states(states: States, path: str | Path, teachers: tuple[str, ...], labels: list[int]) -> None:
    """Write the states (atomically) with the teachers that labelled them and the skills they hold."""
    checkpoint.save_atomic({"format": STATES_FORMAT, "obs": states.obs, "mu": states.mu, "label": states.label,
                            "steps": states.steps, "teachers": list(teachers), "skill_labels": labels}, path)


def load_states(path: str, num_obs: int, num_actions: int, teachers: tuple[str, ...], device: torch.device
                ) -> tuple[States, list[int]]:
    """States written by save_states, refused in one line naming --states when they do not fit: another
    observation or action size than the student's, or other teachers than those named. -> (states, their skills)"""
    name = f"--states: {path}"
    ckpt = checkpoint.load(path, STATES_FORMAT, map_location=device, name=name)
    obs, mu, label = ckpt["obs"], ckpt["mu"], ckpt["label"]
    if obs.ndim != 2 or obs.shape[1] != num_obs or mu.shape != (len(obs), num_actions) or label.shape != (len(obs),):
        raise UserError(f"{name}: holds states of {tuple(obs.shape)} observations and {tuple(mu.shape)} actions; the "
                        f"student's are {num_obs} and {num_actions} a state")
    if list(ckpt["teachers"]) != list(teachers):
        raise UserError(f"{name}: labelled by {' '.join(ckpt['teachers'])}, not by the --teachers named")
    # steps 0: those states were simulated (and counted in a history) by the run that wrote them
    return States(obs.float(), mu.float(), label.long(), 0), list(ckpt["skill_labels"])


def skill_distance(student: SkillPolicy, obs_n: torch.Tensor, mu: torch.Tensor, label: torch.Tensor,
                   batch: int) -> dict[int, float]:
    """Each skill's mean squared distance (over actions and its states) of the student's means on the normalised
    observations obs_n from the teachers' mu. -> {label: distance}"""
    sums = torch.zeros(skills.NUM_SLOTS, device=obs_n.device)
    with torch.no_grad():
        for i in range(0, len(obs_n), batch):
            d = (student.actor(obs_n[i : i + batch]) - mu[i : i + batch]).square().mean(-1)
            sums.index_add_(0, label[i : i + batch], d)
    counts = torch.bincount(label, minlength=skills.NUM_SLOTS)
    return {int(k): float(sums[k] / counts[k]) for k in torch.nonzero(counts).flatten()}


def fit(student: SkillPolicy, states: States, epochs: int, batch: int, lr: float, gen: torch.Generator,
        show: bool = True, stop: Callable[[], bool] = lambda: False) -> list[dict[int, float]]:
    """Fit student.actor to the teachers' means on `states` (a held-out tenth aside, drawn with gen), its
    normaliser kept, for `epochs` passes or until `stop()` says so after one. -> each epoch's held-out distance per
    skill (the first entry: before fitting)."""
    obs_n = student.obs_norm.normalize(states.obs)  # (S, num_obs), the normaliser frozen
    order = torch.randperm(len(obs_n), generator=gen, device="cpu").to(obs_n.device)
    held = order[: max(1, len(order) // 10)]
    train = order[len(held):]
    held_obs, held_mu, held_label = obs_n[held], states.mu[held], states.label[held]
    optimizer = torch.optim.Adam(student.actor.parameters(), lr=lr, eps=1e-5)
    curve = [skill_distance(student, held_obs, held_mu, held_label, batch)]
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        perm = train[torch.randperm(len(train), generator=gen, device="cpu").to(obs_n.device)]
        loss_sum, n = 0.0, 0
        for i in range(0, len(perm), batch):
            mb = perm[i : i + batch]
            loss = (student.actor(obs_n[mb]) - states.mu[mb]).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum, n = loss_sum + float(loss.detach()) * len(mb), n + len(mb)
        curve.append(skill_distance(student, held_obs, held_mu, held_label, batch))
        if not all(math.isfinite(v) for v in curve[-1].values()):
            raise UserError(f"--learning-rate {lr}: the fit diverged at epoch {epoch} (a distance is not finite); "
                            "nothing was written: pass a smaller step")
        if show:
            worst = max(curve[-1], key=curve[-1].get)
            print(f"fit: epoch {epoch}/{epochs}  train {loss_sum / max(n, 1):.6f}  held-out "
                  f"{sum(curve[-1].values()) / len(curve[-1]):.6f} (the farthest skill {worst:03d}: "
                  f"{curve[-1][worst]:.6f})  {time_left(time.perf_counter() - start, epoch, epochs - epoch)}",
                  flush=True)
        if epoch < epochs and stop():
            print(f"fit: stopped after epoch {epoch} of {epochs} (asked to stop)", flush=True)
            break
    return curve


def student_file(init_path: str, student: SkillPolicy, args: Args, labels: list[int], states: States,
                 curve: list[dict[int, float]]) -> dict:
    """The student's policy file: --init-from's contents with the fitted actor (and its skill heads' labels, if it
    has them; its observation size, history, normaliser and critic the student's: with_history may widen them), its
    skill labels those it had and the distilled ones, its history counting the collected steps, and
    what the distillation did."""
    init = checkpoint.load(init_path, POLICY_FORMAT, name=f"--init-from: {init_path}")
    before = lineage.before(None, init_path, init)
    heads = skill_heads_of(student.actor)

    def cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in state.items()}

    return {**init, "actor": cpu(student.actor.state_dict()), "obs_norm": cpu(student.obs_norm.state_dict()),
            "num_obs": student.num_obs, "history_steps": student.history_steps,
            **({"critic": cpu(student.critic_state["critic"])} if "critic" in student.critic_state else {}),
            **({"skill_heads": heads} if heads is not None else {}),
            "skill_labels": sorted(set(init.get("skill_labels") or []) | set(labels)),
            "motion_dir": args.motion_dir, "iteration": 0, "samples": states.steps,
            "history": lineage.total(before, 0, states.steps),
            "offline_distill": {"teachers": list(args.teachers), "states_per_skill": args.states_per_skill,
                                "action_noise": args.action_noise, "epochs": args.epochs,
                                "epochs_done": len(curve) - 1, "learning_rate": args.learning_rate,
                                "steps": states.steps, "states": args.states,
                                "held_out_before": {f"{k:03d}": v for k, v in curve[0].items()},
                                "held_out": {f"{k:03d}": v for k, v in curve[-1].items()},
                                "held_out_epochs": [{f"{k:03d}": v for k, v in c.items()} for c in curve]}}


def main(args: Args) -> dict[int, float]:
    """Collect, fit, write; -> the held-out distance per skill after the fit."""
    check_counts(args, "num_envs", "states_per_skill", "batch")
    check_counts(args, "epochs", minimum=0)
    if not (args.action_noise >= 0 and math.isfinite(args.action_noise)):
        raise UserError(f"--action-noise {args.action_noise}: must be a finite std >= 0")
    if not (args.learning_rate > 0 and math.isfinite(args.learning_rate)):
        raise UserError(f"--learning-rate {args.learning_rate}: must be a finite step > 0")
    if not args.teachers:
        raise UserError("--teachers: name at least one policy file")
    out = check_file(args.out, "--out")
    check_file(args.save_states, "--save-states")
    if args.states and args.save_states:
        raise UserError("--save-states: the states are read from --states; pass one of the two")
    if Path(args.out).resolve() == Path(args.init_from).resolve():
        raise UserError(f"--out {args.out}: is --init-from's file; name another (the start is never overwritten)")
    device = resolve_device(args.device)
    student = load_policy(args.init_from, device, flag="--init-from")  # one that sees no reference
    args.env.history.check()
    past = args.env.history.steps
    if past and student.history_steps == 0:
        student = with_history(student, past)
    elif past and past != student.history_steps:
        raise UserError(f"--env.history.steps {past}: the student observes its last {student.history_steps} control "
                        f"steps; pass --env.history.steps {student.history_steps} (or 0: the student's)")
    cfg = dataclasses.replace(  # the student's model, physics, actions and past, as its evaluation has them
        args.env, hand=student.hand, physics=student.physics, ball_starts=student.ball_starts,
        action_scale=student.action_scale,
        action_clip=student.action_clip, history=History(student.history_steps),
        label_sampling=LabelSampling("samples"))
    motions = load_motions(args.motion_dir, cfg, device)
    env = ImitationEnv(cfg, motions, args.num_envs, device, seed=args.seed)
    teachers = load_teachers(args.teachers, env, device, show=True)
    labels = env.skill_labels.tolist()
    untaught = [lab for lab in labels if int(teachers.by_label[lab]) < 0]
    if untaught:
        raise UserError(f"--teachers: no file teaches {', '.join(f'{lab:03d}' for lab in untaught)} of "
                        f"--motion-dir {args.motion_dir}")
    if args.skill_heads:
        with_skill_heads(student, labels)
    student.actor.requires_grad_(True)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    cpu_gen = torch.Generator().manual_seed(args.seed)
    print(f"offline distillation on {device}: {len(labels)} skills x {args.states_per_skill:,} states, "
          f"{args.num_envs:,} environments, {args.epochs} epochs -> {out}", flush=True)
    if args.states:
        states, held_labels = load_states(args.states, env.num_obs, env.num_actions, args.teachers, device)
        if held_labels != labels:
            raise UserError(f"--states: {args.states}: holds the skills {', '.join(f'{x:03d}' for x in held_labels)}, "
                            f"--motion-dir {args.motion_dir} {', '.join(f'{x:03d}' for x in labels)}")
    else:
        states = collect(env, teachers, args.states_per_skill, args.action_noise, gen)
        if args.save_states:
            save_states(states, args.save_states, args.teachers, labels)
    # Ctrl-C or SIGTERM (a time limit: timeout -s TERM) during the fit: finish the epoch, write the student
    request = StopRequest(Ranks(), lambda: say("\nstop requested: the fit stops after this epoch and writes the "
                                               "student (Ctrl-C again: stop at once, writing nothing)\n"))
    try:
        with torch.enable_grad():
            curve = fit(student, states, args.epochs, args.batch, args.learning_rate, cpu_gen,
                        stop=lambda: request.requested)
    finally:
        request.restore()
    checkpoint.save_atomic(student_file(args.init_from, student, args, labels, states, curve), out)
    print("held-out distance per skill, before -> after: " + ", ".join(
        f"{k:03d} {curve[0][k]:.5f} -> {v:.5f}" for k, v in curve[-1].items()))
    print(f"policy: {out} ({states.steps:,} control steps simulated)"
          + (f"; states: {args.save_states}" if args.save_states else ""))
    return curve[-1]


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
