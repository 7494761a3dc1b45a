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
4-5 cm from one frame to the next: the data's dribble is not exactly periodic (the same frame is also the nearest
in body pose alone). Past the last frame an episode follows the loop frame's successor, and the world's alignment
(switch_starts.Alignment, which switch starts use too) is composed with the planar transform that lays the loop
frame's root onto the last frame's, so the reference carries on from where the last frame stood, one more loop
each time, until the episode's `max_episode_steps`. The mismatch left is faded in over `blend_frames` frames
(LoopBlend): at the loop the reference's bodies, ball and orientations are moved by all of it, so that they go on
from the last frame without a jump, and by none of it `blend_frames` frames later.
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
    blend_frames: int = 10
    """Frames over which the jump at a loop fades (LoopBlend): the reference is moved by all of the last frame's
    mismatch with the loop frame at the loop and by none of it this many frames later; 0: it jumps."""

    def check(self) -> None:
        """Refuse values that cannot work, in one line naming the flag."""
        bad = skills.outside_slots(self.labels)
        if bad:
            raise UserError(f"--env.loops.labels {bad}: a skill label is within [0, {skills.NUM_SLOTS - 1}]")
        if self.min_frames < 1:
            raise UserError(f"--env.loops.min-frames {self.min_frames}: must be at least 1")
        if not 0 <= self.blend_frames < self.min_frames:
            raise UserError(f"--env.loops.blend-frames {self.blend_frames}: must be at least 0 and less than "
                            f"--env.loops.min-frames {self.min_frames} (a fade ends before the next loop)")


BALL_VELOCITY_TIME = 0.1  # s: the ball's velocity enters the loop frame's distance as the way it goes in this time


@dataclasses.dataclass
class LoopTable:
    """Per clip of a motion set: whether it loops, its loop frame, the transform that lays the loop frame's root
    onto the last frame's, and what is left between the two frames so laid: looped (M,) bool; frame (M,) long (0
    where it does not loop); move: an Alignment of M; gap_pos (M, 54, 3) the last frame's bodies and ball minus the
    moved loop frame's, gap_rot (M, 53, 3) the rotation (an exponential map) that turns each moved loop-frame body
    onto the last frame's, both in the clip's world (0 where the clip does not loop)."""

    looped: torch.Tensor
    frame: torch.Tensor
    move: Alignment
    gap_pos: torch.Tensor
    gap_rot: torch.Tensor

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
        last_points = torch.cat((t.body_pos[dst], t.ball_pos[dst][:, None]), dim=1)  # (M, 54, 3)
        loop_points = torch.cat((t.body_pos[src], t.ball_pos[src][:, None]), dim=1)
        gap_pos = (last_points - move.point(loop_points)) * looped[:, None, None]
        turn = rotations.quat_mul(t.body_quat[dst], rotations.quat_conj(move.orientation(t.body_quat[src])))
        gap_rot = rotations.quat_to_expmap(turn) * looped[:, None, None]  # the short way round
        return LoopTable(looped.to(device), frame.to(device), Alignment(move.turn.to(device), move.shift.to(device)),
                         gap_pos.to(device), gap_rot.to(device))


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
           align: Alignment) -> tuple[torch.Tensor, Alignment, torch.Tensor]:
    """The frame a world follows and its alignment, for frame ids (N,) that may have passed the clip's last (N,):
    a looped clip's frame last + k reads as the loop frame + k, laid onto the last frame through the world's
    alignment; other worlds keep theirs. Also which worlds so loop (N,) bool. Branch-free (no host sync); one loop
    at most (k <= the loop's length)."""
    past = table.looped[motion_ids] & (frame_ids > last)  # (N,)
    loop_frame = table.frame[motion_ids]
    frames = torch.where(past, loop_frame + (frame_ids - last), frame_ids)
    move = Alignment(table.move.turn[motion_ids], table.move.shift[motion_ids])
    moved = compose(align, move)
    turn = torch.where(past[:, None], moved.turn, align.turn)
    shift = torch.where(past[:, None], moved.shift, align.shift)
    return frames, Alignment(turn, shift), past


@dataclasses.dataclass
class LoopBlend:
    """The jump at a loop, faded over `frames` frames, per world: the reference's bodies and ball are moved by the
    last frame's gap (LoopTable.gap_pos, gap_rot, turned into the world's alignment) times a weight that is 1 at the
    loop frame's successor and falls linearly to 0 `frames` frames later, so that the reference goes on from the
    last frame without a jump and is the looped clip's again after those frames.

    steps (N,) frames played since the world's last loop (`frames` or more: no offset); pos (N, 54, 3) and rot
    (N, 53, 3) (exponential maps) the offsets of that loop, in the world."""

    frames: int
    steps: torch.Tensor
    pos: torch.Tensor
    rot: torch.Tensor

    @staticmethod
    def new(n: int, frames: int, device: torch.device | str) -> "LoopBlend":
        return LoopBlend(frames, torch.full((n,), frames, dtype=torch.long, device=device),
                         torch.zeros(n, 54, 3, device=device), torch.zeros(n, 53, 3, device=device))

    def restart(self, env_ids: torch.Tensor) -> None:
        self.steps[env_ids] = self.frames
        self.pos[env_ids] = 0.0
        self.rot[env_ids] = 0.0

    def weight(self, steps: torch.Tensor) -> torch.Tensor:
        """(N,) -> (N,): 1 at a loop (steps 0), 0 from `frames` steps on."""
        return (1.0 - steps.float() / max(self.frames, 1)).clamp(min=0.0)

    @staticmethod
    def offsets(table: LoopTable, motion_ids: torch.Tensor, align: Alignment) -> tuple[torch.Tensor, torch.Tensor]:
        """The gap of each world's clip in the world, through the alignment it had before the loop. -> (N, 54, 3),
        (N, 53, 3)."""
        return align.vector(table.gap_pos[motion_ids]), align.vector(table.gap_rot[motion_ids])

    def advance(self, table: LoopTable, motion_ids: torch.Tensor, looped: torch.Tensor, align: Alignment) -> None:
        """One frame on: the worlds that loop now (looped (N,) bool, `align` their alignment before it) start a
        fade; the others go one frame further into theirs."""
        pos, rot = self.offsets(table, motion_ids, align)
        self.steps = torch.where(looped, torch.zeros_like(self.steps), self.steps + 1)
        self.pos = torch.where(looped[:, None, None], pos, self.pos)
        self.rot = torch.where(looped[:, None, None], rot, self.rot)

    def peek(self, table: LoopTable, motion_ids: torch.Tensor, looped: torch.Tensor,
             align: Alignment) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight (N,) and position offsets (N, 54, 3) of the frame the next step leads to, advance() not yet
        made: looped (N,) the worlds whose next frame is a loop's, `align` their alignment now."""
        pos = align.vector(table.gap_pos[motion_ids])  # the positions' offsets alone (offsets()' first)
        w = torch.where(looped, torch.ones_like(self.pos[:, 0, 0]), self.weight(self.steps + 1))
        return w, torch.where(looped[:, None, None], pos, self.pos)

    def apply(self, w: torch.Tensor, pos: torch.Tensor, rot: torch.Tensor | None, body_pos: torch.Tensor,
              ball_pos: torch.Tensor, body_quat: torch.Tensor | None = None):
        """The reference moved by w (N,) times the offsets: body_pos (N, 53, 3), ball_pos (N, 3), and body_quat
        (N, 53, 4) when given. -> (body_pos, ball_pos, body_quat or None)."""
        body_pos = body_pos + w[:, None, None] * pos[:, :53]
        ball_pos = ball_pos + w[:, None] * pos[:, 53]
        if body_quat is not None:
            body_quat = rotations.quat_mul(rotations.quat_from_expmap(w[:, None, None] * rot), body_quat)
        return body_pos, ball_pos, body_quat
