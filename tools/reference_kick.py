"""How well reference starts fit the model, with each setting of MotionSet's `consistent` fix
(skillmimic.reference_fix).

    python tools/reference_kick.py --motion-dir data/BallPlay-M/layup --every 1   # every layup frame (~10 s)
    python tools/reference_kick.py --every 7                                      # every 7th frame of all clips

For the clips loaded three ways (consistent 'off', 'ball', 'all'), prints a markdown table, one row per measure:
- the kick at reset: from each start (every `every`-th frame of each clip, but its last), plain MuJoCo (CPU) is
  reset to the frame's state and steps once (one control step, 2 physics steps) with PD targets = the next
  frame's hinge angles (open loop); the ball's and the root's velocities are compared with the table's
  next-frame ones (m/s), and the starts whose ball velocity is off by more than 1 m/s are counted;
- penetration in the start states (MuJoCo's collision, cm): the deepest humanoid geom in the floor, the ball in
  the floor, and the ball in a hand's geoms over the starts where the ball is within a hand's contact margin;
- FK fidelity over every frame of the clips: the mean distance of the 53 bodies (the model's forward
  kinematics of the frame, as the tables hold it) from the recorded positions (columns 165:324), and the worst
  clip's mean (cm).
Each statistic is median / 90th percentile / max over the starts.
"""

from __future__ import annotations

import dataclasses
import time

import mujoco
import numpy as np
import torch

from skillmimic import DATA
from skillmimic import model as M
from skillmimic.cli import check_counts, run_command
from skillmimic.motion import MotionSet
from skillmimic.sim import SimConfig, make_sim


@dataclasses.dataclass
class Args:
    motion_dir: str = str(DATA)
    """Clips to measure (a file or a folder)."""
    hand: M.Hand = "rigid"
    """The hand's model (training's default is the rigid hand)."""
    every: int = 7
    """Start at every this-many-th frame of each clip."""
    batch: int = 512
    """Worlds stepped at once."""


def start_rows(motions: MotionSet, every: int) -> torch.Tensor:
    """Rows of the starts: frames 0, every, 2 every, ... of each clip that have a next frame. -> (S,) long."""
    rows = [torch.arange(0, int(n) - 1, every) + int(a) for a, n in zip(motions.starts, motions.lengths)]
    return torch.cat(rows)


def row_ids(motions: MotionSet, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(motion id, frame id) of rows (S,) -> two (S,) long tensors."""
    motion_ids = torch.searchsorted(motions.starts, rows, right=True) - 1
    return motion_ids, rows - motions.starts[motion_ids]


def kick(motions: MotionSet, rows: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One open-loop control step from each start row. -> ball and root velocity errors (S,), m/s."""
    sim = make_sim(SimConfig(backend="mujoco", hand=motions.spec.hand), min(batch, len(rows)), "cpu")
    t, ball_err, root_err = motions.table, [], []
    for chunk in rows.split(sim.num_worlds):
        ids = torch.arange(len(chunk))
        sim.reset(ids, *motions.state(*row_ids(motions, chunk)))
        sim.ctrl[ids] = t.dof_pos[chunk + 1]
        sim.step()
        ball_err.append((sim.ball_lin_vel_w[ids] - t.ball_vel[chunk + 1]).norm(dim=-1))
        root_err.append((sim.qvel[ids, :3] - t.root_lin_vel[chunk + 1]).norm(dim=-1))
    return torch.cat(ball_err), torch.cat(root_err)


def penetration(motions: MotionSet, rows: torch.Tensor) -> dict[str, np.ndarray]:
    """Penetration depths (m, >= 0) in the start states by MuJoCo's collision: 'floor' (S,) of the deepest
    humanoid geom, 'ball_floor' (S,), and 'hand_ball' of the starts where the ball is within a hand geom's margin."""
    m = M.load_model(motions.spec.hand)
    d = mujoco.MjData(m)
    body = M.geom_body_table(m).numpy()
    human, hand = (body >= 0) & (body < M.NUM_BODIES), np.isin(body, M.LEFT_HAND + M.RIGHT_HAND)
    floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    ball = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ball")
    qpos = motions.state(*row_ids(motions, rows))[0].double().numpy()
    out = {"floor": np.zeros(len(rows)), "ball_floor": np.zeros(len(rows)), "hand_ball": []}
    for i, q in enumerate(qpos):
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)
        g, dist = d.contact.geom[: d.ncon], d.contact.dist[: d.ncon]
        for name, mask in (("floor", (g == floor).any(1) & (human[g].any(1))),
                           ("ball_floor", (g == floor).any(1) & (g == ball).any(1)),
                           ("hand_ball", (g == ball).any(1) & (hand[g].any(1)))):
            if not mask.any():
                continue
            depth = max(0.0, -float(dist[mask].min()))
            if name == "hand_ball":
                out[name].append(depth)
            else:
                out[name][i] = depth
    out["hand_ball"] = np.asarray(out["hand_ball"])
    return out


def fk_fidelity(motions: MotionSet) -> tuple[float, float]:
    """Mean body-position error (m) of the tables' forward kinematics against the recording, over all frames and
    of the worst clip."""
    t = motions.table
    err = (t.body_pos - t.body_pos_recorded).norm(dim=-1).mean(-1)  # (F,)
    per_clip = torch.stack([c.mean() for c in err.split(motions.lengths.tolist())])
    return float(err.mean()), float(per_clip.max())


def spread(x, scale: float = 1.0, digits: int = 2) -> str:
    """'median / 90th percentile / max' of x, times scale."""
    x = np.asarray(x, dtype=np.float64) * scale
    if x.size == 0:
        return "-"
    return " / ".join(f"{v:.{digits}f}" for v in (np.median(x), np.quantile(x, 0.9), x.max()))


MODES = ("off", "ball", "all")


def measure(args: Args) -> dict[str, dict]:
    """Every measure for each setting of the fix: {consistent: {name: value}} (also printed as a markdown table)."""
    check_counts(args, "every", "batch")
    results = {}
    for consistent in MODES:
        start = time.perf_counter()
        motions = MotionSet(args.motion_dir, hand=args.hand, consistent=consistent)
        load_s = time.perf_counter() - start
        rows = start_rows(motions, args.every)
        ball_err, root_err = kick(motions, rows, args.batch)
        pen = penetration(motions, rows)
        fk_mean, fk_worst = fk_fidelity(motions)
        results[consistent] = {
            "starts": len(rows), "load_s": load_s, "ball_vel_err": ball_err.numpy(), "root_vel_err": root_err.numpy(),
            "ball_off_1ms": int((ball_err > 1.0).sum()), "floor": pen["floor"], "ball_floor": pen["ball_floor"],
            "hand_ball": pen["hand_ball"], "fk_mean": fk_mean, "fk_worst": fk_worst,
        }
    print(f"{results['off']['starts']} starts, {args.hand} hand, {args.motion_dir} (every {args.every}th frame)\n")
    print("| measure (median / 90th pct / max) | " + " | ".join(f"consistent='{m}'" for m in MODES) + " |")
    print("| --- |" + " --- |" * len(MODES))
    rows_ = [("ball velocity error after one step (m/s)", lambda r: spread(r["ball_vel_err"])),
             ("starts with ball velocity off > 1 m/s", lambda r: f"{r['ball_off_1ms']} of {r['starts']}"),
             ("root velocity error after one step (m/s)", lambda r: spread(r["root_vel_err"])),
             ("humanoid in the floor (cm)", lambda r: spread(r["floor"], 100)),
             ("ball in the floor (cm)", lambda r: spread(r["ball_floor"], 100)),
             ("ball in a hand, where within the margin (cm)",
              lambda r: f"{spread(r['hand_ball'], 100)} ({len(r['hand_ball'])} starts)"),
             ("FK error vs recorded, mean / worst clip (cm)",
              lambda r: f"{100 * r['fk_mean']:.2f} / {100 * r['fk_worst']:.2f}"),
             ("load time (s)", lambda r: f"{r['load_s']:.1f}")]
    for name, cell in rows_:
        print(f"| {name} | " + " | ".join(cell(results[m]) for m in MODES) + " |")
    return results


if __name__ == "__main__":
    run_command(measure, Args, description=__doc__)
