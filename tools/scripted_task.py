"""Scripted high-level controllers on the task environments, traced control step by step: what stops a task.

    python tools/scripted_task.py --task heading --script fixed --skill 13 --llc results/skills14/YH_policy.pt
    python tools/scripted_task.py --task heading --script steer --llc results/skills14/YH_policy.pt
    python tools/scripted_task.py --task throwing --script pickup-then --skill 5 --llc results/skills14/YH_policy.pt
    python tools/scripted_task.py --hlc runs/hlc/policy.pt --llc results/skills14/YH_policy.pt   # a trained one, traced

The environment is evaluate_task's (TaskEnv without restarts: each world plays one episode to its first success,
fall or time-out). Instead of a trained high-level policy (--hlc) a script picks the skill every 3 control steps
from the world's state:

    fixed        always --skill.
    steer        heading, circling, scoring: dribble forward while the target lies within --cone degrees of the
                 humanoid's heading, else dribble left (011) or right (012) towards it. The target: the heading goal;
                 the point on the circle --lead-angle degrees ahead, in the direction the humanoid faces at the start;
                 the hoop, and once the pelvis is within --layup-distance of it and facing it, --skill (031) for good.
    pickup-then  pickup until the ball has been held for --hold-steps control steps in a row (a hand on it, within
                 0.5 m of the pelvis, the pelvis above 0.5 m: the pickup test's hold), then --skill for good.
    random       a random controller, to measure exploration: at each draw keep the previous skill with probability
                 --stick, else draw one uniformly from the task's skills (which may draw the same again); a draw every
                 --repeat decisions, the skill held in between (the first decision always draws uniformly).

--llc-steps sets the control steps per decision of a script (default 3, the tasks' 20 Hz; with --hlc: the file's).

Set-up experiments: --first-frame starts at the clips' first frames (the skill evaluation's start), --motion-dir
chooses the start clips, --goal-ahead turns the heading goal or the hoop to straight ahead of the humanoid at its
drawn distance, --goal-at X Y puts it at a point of the humanoid's frame, and --throwing.height etc. change a task's
settings (train_hlc.py's flags).

Per episode (every control step is recorded): the outcome; the start (clip label and frame, the ball's floor
distance from the pelvis); the skill switches, the skill playing at a fall and the control steps since it
began; when the ball was first lost (beyond 1.5 m of the pelvis); per task the ball's closest approach to the goal
(heading), the largest angle swept on the circle (circling), the first hold and the free ball's peaks (throwing),
the pelvis's closest approach to the hoop and where the ball comes down through the rim's plane (scoring). Prints a
summary; --json-out writes it with the episodes, --csv-out the episodes.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Literal

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package beside this folder
from skillmimic import DATA, rotations, skills  # noqa: E402
from skillmimic.cli import check_counts, run_command  # noqa: E402
from skillmimic.envs.task_env import TaskEnv, TaskEnvConfig, make_task_env  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402
from skillmimic.evaluate import holding  # noqa: E402
from skillmimic.outputs import check_file  # noqa: E402
from skillmimic.sim import Backend  # noqa: E402
from skillmimic.tasks import (CirclingConfig, HeadingConfig, ScoringConfig, TaskName,  # noqa: E402
                              ThrowingConfig)
from skillmimic.tasks.scoring import HOOP_HEIGHT  # noqa: E402
from skillmimic.tasks.state import TaskState, floor_heading, to_heading_frame  # noqa: E402

NEAR_BALL = 1.5  # m: the ball within this floor distance of the pelvis is with the humanoid (the tasks' near_ball)
SWITCH_WINDOW = 30  # control steps (0.5 s): a fall this soon after a switch is counted as the switch's
SHOT_STEPS = 74  # control steps: the shot from its first frame succeeds this long after it starts
# (results/task_diagnosis/README.md)
PEAK_BINS = (1.8, 2.2, 2.8)  # m: free-ball peak heights are counted below, between and above these


@dataclasses.dataclass
class Args:
    task: TaskName = "heading"
    """The task (with --hlc: the file's)."""
    script: Literal["fixed", "steer", "pickup-then", "random"] = "fixed"
    """How the skill is chosen (the module's docstring); ignored with --hlc."""
    skill: int | None = None
    """fixed: the skill played (default: the task's first); pickup-then: the skill after the hold (default 5, the
    shot); steer on scoring: the skill near the hoop (default 31, the layup)."""
    hlc: str | None = None
    """A trained high-level policy (train_hlc.py's policy.pt) to trace instead of a script."""
    llc: str | None = None
    """The skill policy (default: the shipped one; with --hlc, the file it was trained on)."""
    cone: float = 20.0
    """steer: dribble forward while the target is within this many degrees of the heading."""
    lead_angle: float = 30.0
    """steer on circling: the target is the point this many degrees ahead on the circle."""
    layup_distance: float = 4.5
    """steer on scoring: start --skill once the pelvis is this close to the hoop (m) and facing it."""
    hold_steps: int = 10
    """pickup-then: control steps of hold before the next skill."""
    stick: float = 0.0
    """random: the probability of keeping the previous skill at a draw (else a uniform draw)."""
    repeat: int = 1
    """random: decisions between draws (the drawn skill is held for this many decisions)."""
    llc_steps: int = 3
    """Control steps per decision of a script (with --hlc: the file's)."""
    motion_dir: str = str(DATA)
    """Clips whose frames start the episodes (those of the task's starting skills, else all)."""
    first_frame: bool = False
    """Start at the clips' first frames instead of random ones."""
    goal_ahead: bool = False
    """heading, scoring: turn the goal (the hoop) to straight ahead of the pelvis at its drawn distance."""
    goal_at: tuple[float, float] | None = None
    """heading, scoring: put the goal (the hoop) at this floor point (x forward, y left; m) of the pelvis's heading
    frame at the start instead."""
    episodes: int = 64
    """Episodes (run in parallel)."""
    max_episode_steps: int = 600
    """Longest episode, in control steps (60 Hz)."""
    device: str = "cpu"
    """'cuda', 'cpu' or 'auto'."""
    backend: Backend = "mujoco"
    """Simulator backend (see SimConfig)."""
    seed: int = 0
    """Seed of the starts and goals."""
    json_out: str | None = None
    """Write the summary and every episode to this JSON file."""
    csv_out: str | None = None
    """Write every episode, one row each, to this CSV file."""
    heading: HeadingConfig = dataclasses.field(default_factory=HeadingConfig)
    """Settings of the heading task."""
    circling: CirclingConfig = dataclasses.field(default_factory=CirclingConfig)
    """Settings of the circling task."""
    throwing: ThrowingConfig = dataclasses.field(default_factory=ThrowingConfig)
    """Settings of the throwing task."""
    scoring: ScoringConfig = dataclasses.field(default_factory=ScoringConfig)
    """Settings of the scoring task."""


# --- the scripts' pieces: pure functions of the state ---------------------------------------------------------------
def bearing(root_pos: torch.Tensor, root_quat: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The angle of floor points target (N, 2) from the heading of a pelvis at root_pos (N, 3) turned root_quat
    (N, 4), left positive (rad). -> (N,)"""
    t3 = torch.cat((target, root_pos[:, 2:3]), dim=-1)
    local = to_heading_frame(root_pos, root_quat, t3)
    return torch.atan2(local[:, 1], local[:, 0])


def steer_labels(angle: torch.Tensor, cone: float) -> torch.Tensor:
    """Dribble forward within cone (rad) of the heading, else left (positive angles) or right. (N,) -> (N,) labels"""
    side = torch.where(angle > 0, skills.DRIBBLE_LEFT, skills.DRIBBLE_RIGHT)
    return torch.where(angle.abs() <= cone, torch.full_like(side, skills.DRIBBLE_FORWARD), side)


def held(state: TaskState) -> torch.Tensor:
    """The pickup test's hold at one step (skillmimic.evaluate.holding) with a hand on the ball. -> (N,) bool"""
    return state.hand_ball & holding(state.root_pos, state.ball_pos)


def circle_target(state: TaskState, centre: torch.Tensor, radius: torch.Tensor, lead: torch.Tensor) -> torch.Tensor:
    """The point on the circle (centre (N, 2), radius (N,)) lead (N,) rad ahead of the pelvis's angle about the
    centre (positive: counter-clockwise). -> (N, 2)"""
    rel = state.root_pos[:, :2] - centre
    a = torch.atan2(rel[:, 1], rel[:, 0]) + lead
    return centre + radius[:, None] * torch.stack((torch.cos(a), torch.sin(a)), dim=-1)


class Script:
    """A scripted high-level policy: called with the environment, the next skill of every world as indices into
    its task's skills. It remembers per world what it did (a hold's count, a switch made for good)."""

    def __init__(self, env: TaskEnv, args: Args):
        self.env, self.args, self.task = env, args, env.task
        name = type(env.task).__name__.lower()
        self.then = args.skill if args.skill is not None else {"scoring": skills.LAYUP}.get(name, skills.SHOT)
        fixed = args.skill if args.skill is not None else env.task.skills[0]
        need = {"fixed": [fixed], "steer": list(skills.DRIBBLES) + ([self.then] if name == "scoring" else []),
                "pickup-then": [skills.PICKUP, self.then], "random": []}[args.script]
        if args.script == "steer" and name == "throwing":
            raise UserError("--script steer: the throwing task has no goal on the floor; use fixed or pickup-then")
        missing = [lab for lab in need if lab not in env.task.skills]
        if missing:
            raise UserError(f"--script {args.script}: the {name} task picks {list(env.task.skills)}, not "
                            f"{[f'{m:03d}' for m in missing]}")
        self.name, self.fixed = name, fixed
        n, dev = env.num_envs, env.device
        self.count = torch.zeros(n, dtype=torch.long, device=dev)
        self.switched = torch.zeros(n, dtype=torch.bool, device=dev)
        self.direction = torch.zeros(n, device=dev)  # circling: +1 counter-clockwise, -1 clockwise, 0 not yet chosen
        self.table = torch.full((skills.NUM_SLOTS,), -1, dtype=torch.long, device=dev)  # label -> action index
        self.table[torch.tensor(env.task.skills, device=dev)] = torch.arange(len(env.task.skills), device=dev)
        # random: its own stream (the environment's draws, hence the starts and goals, stay those of the seed)
        self.gen = torch.Generator(device=dev).manual_seed(args.seed + 7919)
        self.decisions = 0
        self.last = torch.zeros(n, dtype=torch.long, device=dev)  # random: the skill index played last

    def labels(self, state: TaskState) -> torch.Tensor:
        a, n, dev = self.args, self.env.num_envs, self.env.device
        if a.script == "fixed":
            return torch.full((n,), self.fixed, dtype=torch.long, device=dev)
        if a.script == "pickup-then":
            self.count = torch.where(held(state), self.count + 1, torch.zeros_like(self.count))
            self.switched |= self.count >= a.hold_steps
            return torch.where(self.switched, self.then, skills.PICKUP)
        cone = math.radians(a.cone)
        if self.name == "heading":
            return steer_labels(bearing(state.root_pos, state.root_quat, self.task.goal), cone)
        if self.name == "circling":
            if not bool(self.direction.any()):  # the way the humanoid faces along the circle at the start
                rel = state.root_pos[:, :2] - self.task.centre
                ccw = torch.stack((-rel[:, 1], rel[:, 0]), dim=-1)
                self.direction = torch.where((ccw * floor_heading(state.root_quat)).sum(-1) >= 0, 1.0, -1.0)
            target = circle_target(state, self.task.centre, self.task.radius,
                                   self.direction * math.radians(a.lead_angle))
            return steer_labels(bearing(state.root_pos, state.root_quat, target), cone)
        angle = bearing(state.root_pos, state.root_quat, self.task.hoop)  # scoring
        near = (state.root_pos[:, :2] - self.task.hoop).norm(dim=-1) <= a.layup_distance
        self.switched |= near & (angle.abs() <= cone)
        return torch.where(self.switched, self.then, steer_labels(angle, cone))

    def __call__(self, obs: torch.Tensor, last: torch.Tensor | None = None) -> torch.Tensor:
        """The next skills (N,) (indices into the task's skills); obs and the environment's last skills are a trained
        policy's inputs, which a script does not read (random keeps its own)."""
        if self.args.script == "random":
            if self.decisions % self.args.repeat == 0:
                self.last = sticky_draw(self.last, len(self.task.skills), self.args.stick if self.decisions else 0.0,
                                        self.gen)
            self.decisions += 1
            return self.last
        return self.table[self.labels(self.env.state())]


def sticky_draw(last: torch.Tensor, num_actions: int, stick: float, gen: torch.Generator) -> torch.Tensor:
    """Keep last (N,) (action indices) with probability stick, else draw uniformly from num_actions. -> (N,) long"""
    keep = torch.rand(last.shape, device=last.device, generator=gen) < stick
    new = torch.randint(0, num_actions, last.shape, device=last.device, generator=gen)
    return torch.where(keep, last, new)


# --- playing and recording -------------------------------------------------------------------------------------------
def move_goals(env: TaskEnv, at: tuple[float, float] | None = None) -> None:
    """Turn the heading goal or the hoop to straight ahead of the pelvis at its drawn floor distance, or put it at
    the point `at` (forward, left; m) of the pelvis's heading frame."""
    state = env.state()
    goal = env.task.goal if hasattr(env.task, "goal") else env.task.hoop  # (N, 2)
    fwd = floor_heading(state.root_quat)  # (N, 2)
    if at is None:
        goal.copy_(state.root_pos[:, :2] + (goal - state.root_pos[:, :2]).norm(dim=-1, keepdim=True) * fwd)
    else:
        left = torch.stack((-fwd[:, 1], fwd[:, 0]), dim=-1)
        goal.copy_(state.root_pos[:, :2] + at[0] * fwd + at[1] * left)


def snapshot(env: TaskEnv, skill: torch.Tensor, success: torch.Tensor, fell: torch.Tensor) -> dict[str, torch.Tensor]:
    """One control step's record of every world (N, ...): the state, the skill label played, success and fall."""
    s = env.state()
    rec = {"root": s.root_pos, "quat": s.root_quat, "ball": s.ball_pos, "ball_vel": s.ball_vel, "hand": s.hand_ball,
           "held": held(s), "skill": skill, "success": success, "fell": fell}
    if hasattr(env.task, "swept"):
        rec["swept"] = env.task.swept
    return {k: v.clone() for k, v in rec.items()}


@torch.no_grad()
def play(env: TaskEnv, policy, goal_ahead: bool = False, goal_at: tuple[float, float] | None = None
         ) -> tuple[dict, dict, dict]:
    """Every world's episode to its first end, policy(obs, each world's last skill) picking the skills, recorded at
    every control step.
    -> (outcome: success, fell (E,) bool, steps (E,) long; the trace: each key (T, E, ...); the state at the start)"""
    E, dev = env.num_envs, env.device
    obs = env.reset()
    if goal_ahead or goal_at is not None:
        move_goals(env, goal_at)
        obs = env.observe()
    skills_t = torch.tensor(env.task.skills, device=dev)
    start = snapshot(env, torch.full((E,), -1, device=dev), torch.zeros(E, dtype=torch.bool, device=dev),
                     torch.zeros(E, dtype=torch.bool, device=dev))
    trace: list[dict] = []
    inner = env.control_step

    def traced(skill_ids: torch.Tensor):
        r, s, f = inner(skill_ids)
        trace.append(snapshot(env, skills_t[skill_ids], s, f))
        return r, s, f

    env.control_step = traced  # this object's method only, for this call
    try:
        done = torch.zeros(E, dtype=torch.bool, device=dev)
        out = {"success": torch.zeros(E, dtype=torch.bool, device=dev),
               "fell": torch.zeros(E, dtype=torch.bool, device=dev),
               "steps": torch.zeros(E, dtype=torch.long, device=dev)}
        while not bool(done.all()):
            obs, _, terminated, truncated, info = env.step(policy(obs, env.last_skill))
            now = (terminated | truncated) & ~done
            out["success"] |= now & info["success"]
            out["fell"] |= now & info["fell"]
            out["steps"] = torch.where(now, info["episode_steps"], out["steps"])
            done |= now
    finally:
        del env.control_step
    return out, {k: torch.stack([t[k] for t in trace]) for k in trace[0]}, start


# --- what the trace says: pure functions of (T, E, ...) tensors -----------------------------------------------------
def alive_mask(steps: torch.Tensor, T: int) -> torch.Tensor:
    """(T, E) bool: control step t (0-based) belongs to the episode of steps (E,) control steps."""
    return torch.arange(T, device=steps.device)[:, None] < steps[None]


def first_step(flag: torch.Tensor) -> torch.Tensor:
    """The first t at which flag (T, E) holds, else -1. -> (E,) long"""
    t = torch.arange(flag.shape[0], device=flag.device)[:, None].expand_as(flag)
    first = torch.where(flag, t, torch.full_like(t, flag.shape[0])).amin(0)
    return torch.where(first == flag.shape[0], torch.full_like(first, -1), first)


def longest_run(flag: torch.Tensor) -> torch.Tensor:
    """The longest run of consecutive steps at which flag (T, E) holds. -> (E,) long"""
    run = torch.zeros(flag.shape[1], dtype=torch.long, device=flag.device)
    best = run.clone()
    for f in flag:  # T steps of (E,)
        run = torch.where(f, run + 1, torch.zeros_like(run))
        best = torch.maximum(best, run)
    return best


def switch_context(skill: torch.Tensor, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Of each episode: the skill at its last step, control steps since that skill began (the episode's length when
    it played one skill throughout), and the number of switches. skill (T, E) labels, steps (E,) >= 1.
    -> three (E,) long"""
    T, E = skill.shape
    last = (steps - 1).clamp(min=0)
    changed = torch.zeros_like(skill, dtype=torch.bool)
    changed[1:] = skill[1:] != skill[:-1]
    changed &= alive_mask(steps, T)
    t = torch.arange(T, device=skill.device)[:, None].expand(T, E)
    began = torch.where(changed, t, torch.zeros_like(t)).amax(0)  # the last switch (0: none)
    return skill.gather(0, last[None])[0], steps - began, changed.sum(0)


def heading_change(quat: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """The signed turn of the heading (rad, left positive, unwrapped) from quat[0] over each episode's steps (E,)
    control steps. quat (T + 1, E, 4): the start, then every step. -> (E,)"""
    yaw = rotations.heading(quat.reshape(-1, 4)).reshape(quat.shape[:2])
    step = torch.remainder(yaw[1:] - yaw[:-1] + math.pi, 2 * math.pi) - math.pi  # (T, E)
    return (step * alive_mask(steps, step.shape[0])).sum(0)


def free_peaks(z: torch.Tensor, vz: torch.Tensor, hand: torch.Tensor, vz0: torch.Tensor) -> torch.Tensor:
    """Throwing's peaks: the ball's vertical velocity turns from up to down with no hand on it. z, vz (T, E) the
    ball's height and vertical velocity, hand (T, E) bool, vz0 (E,) its velocity at the start. -> (T, E) bool"""
    last = torch.cat((vz0[None], vz[:-1]), dim=0)
    return (last > 0) & (vz <= 0) & ~hand


def rim_crossings(ball: torch.Tensor, before0: torch.Tensor, height: float = HOOP_HEIGHT) -> tuple[torch.Tensor, ...]:
    """Where the ball's centre comes down through the plane at `height`: ball (T, E, 3), before0 (E, 3) its position
    at the start. -> (mask (T, E) bool, crossing points (T, E, 2), linearly interpolated)"""
    before = torch.cat((before0[None], ball[:-1]), dim=0)
    down = (before[..., 2] >= height) & (ball[..., 2] < height)
    t = ((before[..., 2] - height) / (before[..., 2] - ball[..., 2]).clamp(min=1e-9)).clamp(0, 1)
    return down, before[..., :2] + t[..., None] * (ball[..., :2] - before[..., :2])


def episode_rows(name: str, env: TaskEnv, out: dict, tr: dict, start: dict, task_state: dict) -> list[dict]:
    """One dict per episode (the module docstring's quantities). task_state: the task's goal tensors at the start."""
    T, E = tr["skill"].shape
    steps, alive = out["steps"], alive_mask(out["steps"], T)
    last_skill, since, switches = switch_context(tr["skill"], steps)
    floor = (tr["ball"] - tr["root"])[..., :2].norm(dim=-1)  # (T, E)
    lost = first_step((floor > NEAR_BALL) & alive)
    turned = heading_change(torch.cat((start["quat"][None], tr["quat"]), dim=0), steps)
    labels = env.motions.labels[env.start_clip]
    rows = []
    for i in range(E):
        n = int(steps[i])
        row = {"episode": i, "outcome": "success" if out["success"][i] else "fell" if out["fell"][i] else "timed_out",
               "steps": n, "start_label": int(labels[i]), "start_frame": int(env.start_frame[i]),
               "start_ball_floor_distance": round(float((start["ball"][i] - start["root"][i])[:2].norm()), 3),
               "switches": int(switches[i]), "last_skill": int(last_skill[i]),
               "steps_since_switch": int(since[i]), "ball_lost_step": int(lost[i]),
               "pelvis_displacement": round(float((tr["root"][max(n - 1, 0), i] - start["root"][i])[:2].norm()), 3),
               "heading_change_deg": round(math.degrees(float(turned[i])), 1)}
        shares = torch.bincount(tr["skill"][:n, i], minlength=skills.NUM_SLOTS).float() / max(n, 1)
        row["skill_shares"] = {f"{lab:03d}": round(float(shares[lab]), 3) for lab in env.task.skills}
        rows.append(row)
    if name == "heading":
        goal = task_state["goal"]  # (E, 2)
        d = (tr["ball"][..., :2] - goal[None]).norm(dim=-1).masked_fill(~alive, float("inf"))
        ang = bearing(start["root"], start["quat"], goal)
        for i, row in enumerate(rows):
            row.update(goal_distance=round(float((goal[i] - start["root"][i, :2]).norm()), 3),
                       goal_bearing_deg=round(math.degrees(float(ang[i])), 1),
                       min_ball_goal_distance=round(float(d[:, i].min()), 3))
    elif name == "circling":
        swept = tr["swept"].abs().masked_fill(~alive, 0.0).amax(0)
        centre, radius = task_state["centre"], task_state["radius"]
        err = ((tr["root"][..., :2] - centre[None]).norm(dim=-1) - radius[None]).abs()
        on = ((err < env.task.cfg.tolerance) & alive).sum(0).float() / steps.clamp(min=1)
        for i, row in enumerate(rows):
            row.update(radius=round(float(radius[i]), 3), max_swept_deg=round(math.degrees(float(swept[i])), 1),
                       on_circle_share=round(float(on[i]), 3))
    elif name == "throwing":
        peaks = free_peaks(tr["ball"][..., 2], tr["ball_vel"][..., 2], tr["hand"], start["ball_vel"][:, 2]) & alive
        hold = first_step(tr["held"] & alive)
        shot_run = longest_run((tr["skill"] == skills.SHOT) & alive)
        for i, row in enumerate(rows):
            z = tr["ball"][:, i, 2][peaks[:, i]]
            after = tr["ball"][:, i, 2][peaks[:, i] & (torch.arange(T) > int(hold[i]))] if hold[i] >= 0 else z[:0]
            row.update(first_hold_step=int(hold[i]), longest_shot_steps=int(shot_run[i]),
                       free_peaks=[round(float(v), 3) for v in z],
                       max_free_peak=round(float(z.max()), 3) if len(z) else None,
                       max_free_peak_after_hold=round(float(after.max()), 3) if len(after) else None)
    elif name == "scoring":
        hoop = task_state["hoop"]
        d_root = (tr["root"][..., :2] - hoop[None]).norm(dim=-1).masked_fill(~alive, float("inf"))
        down, where = rim_crossings(tr["ball"], start["ball"])
        miss = (where - hoop[None]).norm(dim=-1)  # (T, E)
        layup = first_step((tr["skill"] == skills.LAYUP) & alive)
        ang = bearing(start["root"], start["quat"], hoop)
        for i, row in enumerate(rows):
            k = down[:, i] & alive[:, i]
            row.update(hoop_distance=round(float((hoop[i] - start["root"][i, :2]).norm()), 3),
                       hoop_bearing_deg=round(math.degrees(float(ang[i])), 1),
                       min_pelvis_hoop_distance=round(float(d_root[:, i].min()), 3), layup_step=int(layup[i]),
                       max_ball_height=round(float(tr["ball"][:n, i, 2].max()), 3) if n else None,
                       rim_plane_crossings=int(k.sum()),
                       min_crossing_hoop_distance=round(float(miss[:, i][k].min()), 3) if k.any() else None)
            after = k & (torch.arange(T) >= layup[i]) if layup[i] >= 0 else k[:0]
            if after.any():  # the layup's first ball down through the plane, in the pelvis's frame at its start
                t0, t1 = int(layup[i]), int(after.nonzero()[0])
                p = torch.cat((where[t1, i], torch.tensor([0.0])))[None]
                local = to_heading_frame(tr["root"][t0, i][None], tr["quat"][t0, i][None], p)[0]
                row.update(crossing_from_layup_start=[round(float(local[0]), 3), round(float(local[1]), 3)])
    return rows


def summarize(name: str, rows: list[dict]) -> dict:
    """The episodes' shares (fractions), counts and medians, per cause."""
    E = len(rows)
    share = lambda k: sum(k(r) for r in rows) / E  # noqa: E731
    falls = [r for r in rows if r["outcome"] == "fell"]
    out = {"episodes": E, "success": share(lambda r: r["outcome"] == "success"),
           "fell": share(lambda r: r["outcome"] == "fell"), "timed_out": share(lambda r: r["outcome"] == "timed_out"),
           "mean_steps": sum(r["steps"] for r in rows) / E,
           "falls_within_%d_steps_of_a_switch" % SWITCH_WINDOW:
               sum(r["switches"] > 0 and r["steps_since_switch"] <= SWITCH_WINDOW for r in falls),
           "falls": len(falls), "falls_by_skill": _count(f"{r['last_skill']:03d}" for r in falls),
           "ball_lost": share(lambda r: r["ball_lost_step"] >= 0),
           "median_pelvis_speed": _median(r["pelvis_displacement"] / (r["steps"] / 60) for r in rows if r["steps"]),
           "median_abs_heading_change_per_s": _median(abs(r["heading_change_deg"]) / (r["steps"] / 60) for r in rows
                                                      if r["steps"]),
           "start_labels": _count(f"{r['start_label']:03d}" for r in rows),
           "outcomes_by_start_label": {lab: _count(r["outcome"] for r in rows if f"{r['start_label']:03d}" == lab)
                                       for lab in _count(f"{r['start_label']:03d}" for r in rows)},
           "skill_shares": {k: round(sum(r["skill_shares"][k] * r["steps"] for r in rows)
                                     / max(sum(r["steps"] for r in rows), 1), 3) for k in rows[0]["skill_shares"]}}
    if name == "heading":
        out["goal_within_30deg_at_start"] = share(lambda r: abs(r["goal_bearing_deg"]) <= 30)
        out["median_min_ball_goal_distance"] = _median(r["min_ball_goal_distance"] for r in rows)
    elif name == "circling":
        out["median_max_swept_deg"] = _median(r["max_swept_deg"] for r in rows)
        out["max_swept_over_90deg"] = share(lambda r: r["max_swept_deg"] >= 90)
    elif name == "throwing":
        out["held"] = share(lambda r: r["first_hold_step"] >= 0)
        out["median_first_hold_step"] = _median(r["first_hold_step"] for r in rows if r["first_hold_step"] >= 0)
        out[f"shot_for_{SHOT_STEPS}_steps"] = share(lambda r: r["longest_shot_steps"] >= SHOT_STEPS)
        peaks = [r["max_free_peak_after_hold"] for r in rows if r["max_free_peak_after_hold"] is not None]
        out["max_free_peak_after_hold_bins"] = _bins(peaks, E)
        out["median_max_free_peak_after_hold"] = _median(peaks)
    elif name == "scoring":
        out["layup_started"] = share(lambda r: r["layup_step"] >= 0)
        out["crossed_rim_plane"] = share(lambda r: r["rim_plane_crossings"] > 0)
        out["median_min_crossing_hoop_distance"] = _median(r["min_crossing_hoop_distance"] for r in rows
                                                           if r["min_crossing_hoop_distance"] is not None)
        out["median_min_pelvis_hoop_distance"] = _median(r["min_pelvis_hoop_distance"] for r in rows)
    return out


def _count(items) -> dict[str, int]:
    return dict(sorted(collections.Counter(items).items()))


def _median(values) -> float | None:
    v = list(values)
    return statistics.median(v) if v else None


def _bins(values: list[float], episodes: int) -> dict[str, int]:
    """Counts of values below, between and above PEAK_BINS, and the episodes with none."""
    edges = (-math.inf, *PEAK_BINS, math.inf)
    names = [f"<{PEAK_BINS[0]}"] + [f"{a}-{b}" for a, b in zip(PEAK_BINS, PEAK_BINS[1:])] + [f">={PEAK_BINS[-1]}"]
    bins = {n: sum(lo <= v < hi for v in values) for n, lo, hi in zip(names, edges, edges[1:])}
    return {**bins, "none": episodes - len(values)}


def main(args: Args) -> dict:
    check_counts(args, "episodes", "max_episode_steps", "hold_steps", "repeat", "llc_steps")
    if not 0.0 <= args.stick < 1.0:  # NaN too
        raise UserError(f"--stick {args.stick}: must be a probability in [0, 1)")
    if (args.stick or args.repeat != 1) and (args.script != "random" or args.hlc):
        raise UserError("--stick, --repeat: settings of --script random, not of "
                        + ("--hlc" if args.hlc else f"--script {args.script}"))
    check_file(args.json_out, "--json-out", (".json",))
    check_file(args.csv_out, "--csv-out", (".csv",))
    cfg = TaskEnvConfig(backend=args.backend, llc_steps=args.llc_steps, max_episode_steps=args.max_episode_steps,
                        auto_reset=False, first_frame=args.first_frame)
    task = None if args.hlc else args.task
    env, hlc = make_task_env(cfg, args.motion_dir, args.episodes, args.device, args.seed, task=task,
                             task_cfg=None if args.hlc else getattr(args, args.task), llc=args.llc, hlc=args.hlc)
    name = type(env.task).__name__.lower()
    if (args.goal_ahead or args.goal_at is not None) and name not in ("heading", "scoring"):
        raise UserError(f"--goal-ahead, --goal-at: the {name} task has no goal point to move")
    policy = hlc if hlc is not None else Script(env, args)
    out, tr, start = play(env, policy, args.goal_ahead, args.goal_at)
    # The goals as drawn (and turned ahead) at the start: the tasks keep them fixed during an episode.
    task_state = {k: v.clone() for k, v in vars(env.task).items() if k in ("goal", "centre", "radius", "hoop")}
    rows = episode_rows(name, env, out, tr, start, task_state)
    summary = summarize(name, rows)
    what = (f"hlc {args.hlc}" if args.hlc else f"fixed {policy.fixed:03d}" if args.script == "fixed"
            else f"random stick {args.stick} repeat {args.repeat}" if args.script == "random"
            else f"{args.script}" + (f" then {policy.then:03d}" if args.script == "pickup-then" or name == "scoring"
                                     else ""))
    if not args.hlc and args.llc_steps != 3:
        what += f", {args.llc_steps} control steps a decision"
    print(f"{name}, {what}, {args.episodes} episodes: success {100 * summary['success']:.1f}%  fell "
          f"{100 * summary['fell']:.1f}%  timed out {100 * summary['timed_out']:.1f}%  mean steps "
          f"{summary['mean_steps']:.0f}")
    for k, v in summary.items():
        if k not in ("episodes", "success", "fell", "timed_out", "mean_steps"):
            print(f"  {k}: {v}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"args": dataclasses.asdict(args), "task": name,
                                                   "llc": str(env.llc.path), "summary": summary, "episodes": rows},
                                                  indent=1))
    if args.csv_out:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(args.csv_out, "w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()} for r in rows)
    return summary


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
