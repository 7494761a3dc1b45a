"""Training starts that switch skills: a share of the starts begin in one skill's reference state and carry another
skill's label, so that the policy practises the switch that play.py's keys and the task controllers make.

Why: every training episode otherwise starts at a frame of one clip and keeps that clip's label, so the skill
policy never sees a label change, and the shipped policy falls after almost every switch
(`python -m skillmimic.evaluate_switch`, results/switch). After SkillMimic-V2's idea: start in
skill a's state with skill b's label, and reward the way into b's motion. Not measured yet.

A switch start draws its start as any other (clip X of label a, frame f; adaptive or uniform), then a label b
uniformly among the run's other labels, and follows the clip of b whose frame g is nearest to (X, f) in pose
(nearest_frames), from g. That frame stands elsewhere on the court and faces another way, so the environment keeps a
planar rigid transform per world (`Alignment`: a turn about the vertical and a shift across the floor) that lays
g's root onto f's and applies it to every reference quantity it reads for that episode; other worlds keep the
identity, which these functions leave exact to the bit.

The pose feature that picks g: the bodies' positions relative to the pelvis, in the pelvis's heading frame (the
observation's own frame, envs/observations.py), with the ball relative to the pelvis in that frame as one more
point. It ignores where the humanoid stands and which way it faces, which the alignment supplies, and keeps what a
switch has to carry over: the posture (height included, through the feet's and the head's offsets) and where the
ball is with respect to the body (a dribble's ball at the hip is far from a layup frame with the ball overhead).
Velocities are left out: they would need a scale against positions, and a pose match with a velocity mismatch is
what the policy is there to learn to bridge.

Like the ball noise (envs/ball_noise.py) it acts on the starts the environment draws itself (training's), never
on starts given to it (the evaluation's, play.py's, the warm start's demonstration); the evaluation's EnvConfig
keeps it off and a policy file does not record it. With share 0 nothing is computed and nothing is drawn.
"""

from __future__ import annotations

import dataclasses

import torch

from skillmimic import rotations
from skillmimic.errors import UserError


@dataclasses.dataclass
class SwitchStarts:
    share: float = 0.0
    """Share of the training starts that switch: start in the drawn frame's state with another label of the run
    (uniform over the others), drawn at each start; 0: off. No effect on a run of one label."""

    def check(self) -> None:
        """Refuse values that cannot work, in one line naming the flag."""
        if not 0.0 <= self.share <= 1.0:  # NaN fails both
            raise UserError(f"--env.switch-starts.share {self.share}: must be within [0, 1]")


def pose_features(body_pos: torch.Tensor, body_quat: torch.Tensor, ball_pos: torch.Tensor) -> torch.Tensor:
    """The pose feature of nearest_frames (see the module docstring): body_pos (F, 53, 3) and body_quat (F, 53, 4)
    world, pelvis first; ball_pos (F, 3) world -> (F, 53 * 3): the 52 other bodies and the ball relative to the
    pelvis, in its heading frame (m)."""
    root = body_pos[:, :1]  # (F, 1, 3)
    inv = rotations.heading_inverse(body_quat[:, 0])  # (F, 4)
    points = torch.cat((body_pos[:, 1:], ball_pos[:, None]), dim=1) - root  # (F, 53, 3)
    local = rotations.quat_rotate(inv[:, None].expand(-1, points.shape[1], 4), points)
    return local.reshape(body_pos.shape[0], -1)


def nearest_frames(features: torch.Tensor, label_rows: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """For every row of the motion table and every label, the row among that label's start rows nearest in pose.

    features (F, D), one per row of the table; label_rows (L, R) each label's start rows (every frame of its clips
    but the last: a switch needs a next frame to track), padded with -1. -> (F, L) rows of the table. A start row
    maps to itself for its own label (its distance is 0; another row only where the pose is the same, the first
    such). Rows are compared in chunks of `chunk` (a chunk's distances are chunk x R numbers), in float64 so that
    the matrix-product form of the distance (|a|^2 + |b|^2 - 2 a.b, fast) keeps a row's distance to itself near
    0: on the whole BallPlay-M (14,826 rows, 19 labels) it gives the exact differences' table, in 10 s on a 2-core
    CPU against 35 s for the exact form (not timed on a GPU); a test's few hundred rows take milliseconds.
    """
    F, L = features.shape[0], label_rows.shape[0]
    out = torch.empty(F, L, dtype=torch.long, device=features.device)
    for lab in range(L):
        rows = label_rows[lab][label_rows[lab] >= 0]  # (R_l,)
        cand = features[rows]  # (R_l, D)
        for lo in range(0, F, chunk):
            d = torch.cdist(features[lo : lo + chunk].double(), cand.double())  # (chunk, R_l)
            out[lo : lo + chunk, lab] = rows[d.argmin(dim=1)]
    return out


@dataclasses.dataclass
class Alignment:
    """Planar rigid transforms, one per world: x -> turn * x + shift, with `turn` a rotation about the vertical
    (N, 4) wxyz and `shift` (N, 3) across the floor (z = 0). The identity leaves every quantity exact to the bit
    (a rotation by (1, 0, 0, 0) adds zeros)."""

    turn: torch.Tensor  # (N, 4)
    shift: torch.Tensor  # (N, 3)

    @staticmethod
    def identity(n: int, device: torch.device | str = "cpu") -> "Alignment":
        turn = torch.zeros(n, 4, device=device)
        turn[:, 0] = 1.0
        return Alignment(turn, torch.zeros(n, 3, device=device))

    @staticmethod
    def onto(src_root_pos: torch.Tensor, src_root_quat: torch.Tensor, dst_root_pos: torch.Tensor,
             dst_root_quat: torch.Tensor) -> "Alignment":
        """The transform that lays the source root (N, 3), (N, 4) onto the destination root: the source's heading
        turned onto the destination's, and its point on the floor onto the destination's (heights are kept)."""
        turn = rotations.yaw_quat(rotations.heading(dst_root_quat) - rotations.heading(src_root_quat))  # (N, 4)
        shift = dst_root_pos - rotations.quat_rotate(turn, src_root_pos)
        shift[:, 2] = 0.0
        return Alignment(turn, shift)

    def point(self, x: torch.Tensor) -> torch.Tensor:
        """Positions (N, 3) or (N, K, 3) -> the same, moved."""
        return self.vector(x) + (self.shift if x.dim() == 2 else self.shift[:, None])

    def vector(self, v: torch.Tensor) -> torch.Tensor:
        """Directions and velocities (N, 3) or (N, K, 3) -> the same, turned."""
        q = self.turn if v.dim() == 2 else self.turn[:, None].expand(-1, v.shape[1], 4)
        return rotations.quat_rotate(q, v)

    def orientation(self, q: torch.Tensor) -> torch.Tensor:
        """World orientations (N, 4) or (N, K, 4) wxyz -> the same, turned."""
        t = self.turn if q.dim() == 2 else self.turn[:, None].expand(-1, q.shape[1], 4)
        return rotations.quat_mul(t, q)
