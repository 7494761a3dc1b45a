"""Trace one evaluation episode of a skill policy step by step: where and how it loses the ball or falls.

    python -m skillmimic.trace_episode --checkpoint skillmimic/assets/llc_policy.pt --motion-dir data/BallPlay-M/layup

From the first clip's frame 0 (the evaluation's start, without its hinge noise) the policy's mean action plays on
plain MuJoCo (CPU) with the evaluation's settings (no drift termination; the episode ends when a body other than
the feet and hands touches the floor). Every `every` steps, and at the end, one line: the step, the imitation
reward, the bodies' mean distance to the reference (drift), the ball's distance to the reference's ball and both
heights, the pelvis height and the reference's, whether a hand touches the ball and whether the data says one
does, and the bodies on the floor that may not be there. With `--teacher FILE` (distillation, skillmimic.distill),
also the mean over actions of the squared distance of the policy's action means from that policy's in the same
state: train_llc.py's distill_mse, step by step along the student's own episode. A teacher's file (its actor sees the
reference motion, train_llc.py --actor-reference) is fed the reference as its evaluation feeds it, its clips looping
as in its training (--env.loops); every line compares with the reference the step scored (laid onto a loop past
the clip's last frame) and names the clip's frame.

    python -m skillmimic.trace_episode --checkpoint runs/llc/policy.pt --teacher skillmimic/assets/llc_layup.pt
"""

from __future__ import annotations

import dataclasses
import torch

from skillmimic import DATA
from skillmimic import model as M
from skillmimic.cli import check_counts, run_command
from skillmimic.envs.imitation import ImitationEnv, load_motions
from skillmimic.envs.observations import skill_obs_dim
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM, seen_by
from skillmimic.evaluate import evaluation_config
from skillmimic.llc_link import SHIPPED_LLC
from skillmimic.policy import check_action_scale, load_policy


@dataclasses.dataclass
class Args:
    checkpoint: str = str(SHIPPED_LLC)
    """An exported skill policy (policy.pt)."""
    motion_dir: str = str(DATA / "layup")
    """Clips of the skill; the first clip's frame 0 is the start."""
    steps: int = 120
    """Control steps at most (60 Hz)."""
    every: int = 4
    """Print one line every this many steps."""
    teacher: str | None = None
    """An exported policy of the same observation and hand: each line also gets the squared distance of the traced
    policy's action means from this one's (a teacher's, in distillation)."""


@torch.no_grad()
def trace(args: Args) -> list[dict]:
    """The episode's lines, as dicts (also printed)."""
    check_counts(args, "steps", "every")
    policy = load_policy(args.checkpoint, "cpu", num_obs=skill_obs_dim, reference=REFERENCE_OBS_DIM)
    teacher = (None if args.teacher is None else
               load_policy(args.teacher, "cpu", num_obs=policy.num_obs, hand=policy.hand, flag="--teacher",
                           reference=REFERENCE_OBS_DIM))
    if teacher is not None:
        check_action_scale(teacher, policy.action_scale, f"--teacher: {args.teacher}", f"{args.checkpoint}'s")
    cfg = evaluation_config(policy, args.steps, "mujoco")
    motions = load_motions(args.motion_dir, cfg)
    env = ImitationEnv(cfg, motions, 1, "cpu", seed=0)
    zero = torch.zeros(1, dtype=torch.long)
    env.reset_envs(torch.arange(1), zero, zero)
    env.sim.forward()
    obs, t, s = env.observe(), motions.table, env.sim
    lines = []
    for k in range(1, args.steps + 1):
        needs_ref = policy.num_reference or (teacher is not None and teacher.num_reference)
        ref_obs = env.reference_obs() if needs_ref else None  # (1, REFERENCE_OBS_DIM): a teacher's input
        action = policy(obs, seen_by(policy, ref_obs) if policy.num_reference else None)
        taught = None if teacher is None else teacher(obs, seen_by(teacher, ref_obs) if teacher.num_reference else None)
        distance = None if taught is None else float((action - taught).square().mean())
        obs, reward, terminated, _, info = env.step(action)
        row = int(motions.rows(env.motion_ids, env.frame_ids)[0])
        if k % args.every and not terminated[0] and k < args.steps:
            continue
        ref_body, _, ref_ball, _ = env.reference()  # (1, 53, 3), (1, 3): as the step scored it (loops laid on)
        off_floor = torch.nonzero((s.body_floor_contact & ~env.floor_allowed)[0]).flatten().tolist()
        line = {"step": k, "frame": int(env.frame_ids[0]), "reward": float(reward[0]),
                "drift_m": float(info["drift"][0]),
                "ball_error_m": float((s.ball_pos_w[0] - ref_ball[0]).norm()),
                "ball_z": float(s.ball_pos_w[0, 2]), "ref_ball_z": float(ref_ball[0, 2]),
                "pelvis_z": float(s.body_pos_w[0, 0, 2]), "ref_pelvis_z": float(ref_body[0, 0, 2]),
                "hand_on_ball": bool(s.hand_ball_contact[0].any()), "ref_hand_on_ball": bool(t.contact[row] > 0.5),
                "on_floor": [M.BODY_NAMES[i] for i in off_floor], "fell": bool(terminated[0]),
                **({} if distance is None else {"teacher_mse": distance})}
        lines.append(line)
        print(f"step {k:3d}  frame {line['frame']:3d}  reward {line['reward']:.3f}  drift {line['drift_m']:.2f} m  "
              f"ball off {line['ball_error_m']:.2f} m (z {line['ball_z']:.2f}, ref {line['ref_ball_z']:.2f})  pelvis z "
              f"{line['pelvis_z']:.2f} (ref {line['ref_pelvis_z']:.2f})  hand on ball "
              f"{int(line['hand_on_ball'])} (ref {int(line['ref_hand_on_ball'])})"
              + ("" if distance is None else f"  from the teacher {distance:.5f}")
              + (f"  on the floor: {', '.join(line['on_floor'])}" if line["on_floor"] else "")
              + ("  FELL" if line["fell"] else ""))
        if terminated[0]:
            break
    return lines


if __name__ == "__main__":
    run_command(trace, Args, description=__doc__)
