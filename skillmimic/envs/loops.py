"""Clips that loop: past its last frame a dribble's reference goes on from an earlier frame of the clip, laid onto
the last one, so that training scores the ball for as long as an episode lasts.

Why: the evaluation asks a dribble to go on for 300 steps (evaluate.py: from step 100 the ball within 1.5 m and
on the floor once a second), but BallPlay-M's dribble clips last 81-161 frames. Past a clip's last frame training
otherwise holds the reference at that frame and scores the body alone (EnvConfig.steps_after_clip), so it rewards
a dribbler for stopping in the last pose with the ball wherever it goes: the opposite of what is tested. A
dribble repeats itself (two bounces in 81 frames), so its clip can go on where it came from.

The loop frame of a clip: among its frames at least `min_frames` before the last, the one nearest the last in
pose and ball (switch_starts.pose_features: the bodies and the ball relative to the pelvis in its heading frame,
plus the ball's velocity in that frame times 0.1 s, in m). On the dribble-forward clips it is 49-52 frames back,
and laid onto the last frame its bodies are 11-16 cm from the last frame's on average (the ball 16-22 cm), against
4-5 cm from one frame to the next: the data's dribble is not exactly periodic, so the reference jumps a little at
each loop (the same frame is also the nearest in body pose alone). Past the last frame an episode follows the loop
frame's successor, and the world's alignment (switch_starts.Alignment, which switch starts use too) is composed
with the planar transform that lays the loop frame's root onto the last frame's, so the reference carries on from
where the last frame stood, one more loop each time, until the episode's `max_episode_steps`.
"""

from __future__ import annotations

import dataclasses

import torch

from skillmimic import rotations, skills
from skillmimic.envs.switch_starts import Alignment, pose_features
from skillmimic.errors import UserError
from skillmimic.motion import MotionSet


@dataclasses.dataclass
class Loops:
    labels: tuple[int, ...] = ()
    """Skill labels whose clips loop past their last frame (e.g. the dribbles: 11 12 13); (): none. Labels with no
    clips in the run loop nothing."""
    min_frames: int = 30
    """The shortest loop (frames): the loop frame is at least this far before the last; shorter clips do not loop."""

    def check(self) -> None:
        """Refuse values that cannot work, in one line naming the flag."""
        bad = [lab for lab in self.labels if not 0 <= lab < skills.NUM_SLOTS]
        if bad:
            raise UserError(f"--env.loops.labels {bad}: a skill label is within [0, {skills.NUM_SLOTS - 1}]")
        if self.min_frames < 1:
            raise UserError(f"--env.loops.min-frames {self.min_frames}: must be at least 1")


BALL_VELOCITY_TIME = 0.1  # s: the ball's velocity enters the loop frame's distance as the way it goes in this time


@dataclasses.dataclass
class LoopTable:
    """Per clip of a motion set: whether it loops, its loop frame, and the transform that lays the loop frame's root
    onto the last frame's. looped (M,) bool; frame (M,) long (0 where it does not loop); move: an Alignment of M."""

    looped: torch.Tensor
    frame: torch.Tensor
    move: Alignment

    @staticmethod
    def build(motions: MotionSet, cfg: Loops, device: torch.device | str) -> "LoopTable":
        M, t, here = motions.num_motions, motions.table, motions.starts.device
        looped = torch.zeros(M, dtype=torch.bool, device=here)
        frame = torch.zeros(M, dtype=torch.long, device=here)
        chosen = set(cfg.labels)
        for c in range(M):  # once, when the environment is built
            start, length = int(motions.starts[c]), int(motions.lengths[c])
            if int(motions.labels[c]) not in chosen or length - 1 - cfg.min_frames < 0:
                continue
            rows = torch.arange(start, start + length, device=here)
            feat = loop_features(t.body_pos[rows], t.body_quat[rows], t.ball_pos[rows], t.ball_vel[rows])
            candidates = feat[: length - cfg.min_frames]  # frames 0 .. last - min_frames
            frame[c] = (candidates - feat[-1]).norm(dim=-1).argmin()
            looped[c] = True
        src = motions.starts + frame  # the loop frames' rows
        dst = motions.starts + motions.lengths - 1  # the last frames' rows
        move = Alignment.onto(t.root_pos[src], t.root_quat[src], t.root_pos[dst], t.root_quat[dst])
        return LoopTable(looped.to(device), frame.to(device), Alignment(move.turn.to(device), move.shift.to(device)))


def loop_features(body_pos: torch.Tensor, body_quat: torch.Tensor, ball_pos: torch.Tensor,
                  ball_vel: torch.Tensor) -> torch.Tensor:
    """The loop frame's distance features of frames (F, 53, 3), (F, 53, 4), (F, 3), (F, 3) world -> (F, 53 * 3 + 3):
    switch_starts.pose_features and the ball's velocity in the pelvis's heading frame times BALL_VELOCITY_TIME."""
    inv = rotations.heading_inverse(body_quat[:, 0])
    vel = rotations.quat_rotate(inv, ball_vel) * BALL_VELOCITY_TIME
    return torch.cat((pose_features(body_pos, body_quat, ball_pos), vel), dim=-1)


def compose(a: Alignment, b: Alignment) -> Alignment:
    """x -> a(b(x)), both (N,)-batched planar transforms."""
    return Alignment(rotations.quat_mul(a.turn, b.turn), a.vector(b.shift) + a.shift)


def follow(table: LoopTable, motion_ids: torch.Tensor, frame_ids: torch.Tensor, last: torch.Tensor,
           align: Alignment) -> tuple[torch.Tensor, Alignment]:
    """The frame a world follows and its alignment, for frame ids (N,) that may have passed the clip's last (N,):
    a looped clip's frame last + k reads as the loop frame + k, laid onto the last frame through the world's
    alignment; other worlds keep theirs. Branch-free (no host sync); one loop at most (k <= the loop's length)."""
    past = table.looped[motion_ids] & (frame_ids > last)  # (N,)
    loop_frame = table.frame[motion_ids]
    frames = torch.where(past, loop_frame + (frame_ids - last), frame_ids)
    move = Alignment(table.move.turn[motion_ids], table.move.shift[motion_ids])
    moved = compose(align, move)
    turn = torch.where(past[:, None], moved.turn, align.turn)
    shift = torch.where(past[:, None], moved.shift, align.shift)
    return frames, Alignment(turn, shift)
