"""What a privileged critic sees of the reference motion, in the humanoid's heading frame. Pure torch functions.

Why: the skill policy (the actor) never sees the reference (a person or a high-level controller drives it by skill
label alone: envs/observations.py), and by default the critic sees what the actor sees. With several clips per skill
and dribbles whose states repeat, such a critic cannot tell which clip or which phase of a clip an episode is in, so
its values blur across them. Trackers that learn fast (BeyondMimic's privileged critic, most motion trackers) give
the critic the reference as well; the actor stays as it is (train_llc.py --critic-reference). Not measured yet.

The features describe the reference frame that the next control step leads to, the frame the next reward scores:
frame_ids + 1, read as the clip's last frame past the clip (MotionSet.rows clamps it) or, past a looped clip's
last frame, as its loop's frame (envs/loops.py), laid onto where a switch episode started or onto the loop by the
world's alignment (envs/switch_starts.py) as the reward reads it. Positions and velocities are
turned into the heading frame of the humanoid's own pelvis (as envs/observations.py turns the humanoid's), so the
features do not change when the whole scene is moved across the floor or turned about the vertical.

Layout of `reference_obs` (N, REFERENCE_OBS_DIM = 168):
    reference body positions relative to the humanoid's pelvis (53 bodies)  159   (the reference's pelvis first)
    reference ball position relative to the humanoid's pelvis               3
    reference ball linear velocity                                          3
    reference hand-ball contact label (0 or 1)                              1     (MotionFrames.contact: one a frame)
    clip phase: that frame / (clip length - 1)                              1     (1 past the clip)
    share of the steps after the clip played (steps_after_clip)             1     (0 on the clip)
The two phase numbers tell the critic how much of the episode is left: an episode ends at its clip's last frame, or
steps_after_clip steps after it.

`anchor` lays the reference onto the humanoid's own position (train_llc.py --anchor-reference; `seen_by` feeds a
teacher's file what it was trained on): the reference bodies shifted horizontally so that its pelvis lies under the
humanoid's, the reference ball with them while the data says a hand holds it. Why: a teacher that sees where the
reference is acts to catch up with it, and a student that never sees the reference cannot tell those actions from its
own state. The 19-skill student's distance to the pickup's teacher grows with its drift from the reference, 0.0018
within 0.1 m to 0.011 past 0.3 m (on the teacher's own states 0.0006-0.0008; results/dagger_probe/): a teacher fed the
reference so laid has only the pose, the phase and the ball to act on, as the student does.
"""

from __future__ import annotations

import torch

from skillmimic import model as M
from skillmimic import rotations

REFERENCE_OBS_DIM = M.NUM_BODIES * 3 + 3 + 3 + 1 + 1 + 1


def clip_phase(next_frame: torch.Tensor, lengths: torch.Tensor, steps_after_clip: int) -> torch.Tensor:
    """Where in its clip the frame the next step leads to is. next_frame (N,) frame ids, maybe past the clip;
    lengths (N,) the clips' lengths in frames -> (N, 2): the frame (clamped to the clip's last) / (length - 1), and
    the share of steps_after_clip played past the clip's last frame, within [0, 1] (0 when steps_after_clip is 0)."""
    last = lengths - 1
    phase = torch.minimum(next_frame, last).float() / last.clamp(min=1).float()
    after = (next_frame - last).clamp(min=0).float() / max(steps_after_clip, 1)
    if steps_after_clip == 0:
        after = torch.zeros_like(after)
    return torch.stack((phase, after.clamp(max=1.0)), dim=-1)


def reference_obs(
    root_pos: torch.Tensor,
    root_quat: torch.Tensor,
    ref_body_pos: torch.Tensor,
    ref_ball_pos: torch.Tensor,
    ref_ball_vel: torch.Tensor,
    ref_contact: torch.Tensor,
    phase: torch.Tensor,
) -> torch.Tensor:
    """root_pos (N, 3), root_quat (N, 4) wxyz: the humanoid's pelvis, world; ref_body_pos (N, 53, 3), ref_ball_pos and
    ref_ball_vel (N, 3): the reference frame, world (aligned); ref_contact (N,) its contact label; phase (N, 2) of
    clip_phase -> (N, REFERENCE_OBS_DIM)."""
    N, B = ref_body_pos.shape[0], ref_body_pos.shape[1]
    inv = rotations.heading_inverse(root_quat)  # (N, 4)
    bodies = rotations.quat_rotate(inv[:, None].expand(N, B, 4), ref_body_pos - root_pos[:, None])  # (N, 53, 3)
    ball = rotations.quat_rotate(inv, ref_ball_pos - root_pos)
    ball_v = rotations.quat_rotate(inv, ref_ball_vel)
    return torch.cat((bodies.reshape(N, -1), ball, ball_v, ref_contact[:, None].float(), phase), dim=-1)


def anchor(features: torch.Tensor) -> torch.Tensor:
    """The reference laid onto the humanoid's position (the module docstring): features (N, REFERENCE_OBS_DIM) of
    reference_obs -> the same with every reference body's horizontal offset less its pelvis's (the pelvis's offset
    then 0), and the reference ball's less the same while the contact label says a hand holds it (before a catch it
    is the ball to reach, where it is); heights, velocities, the contact label and the phase unchanged."""
    bodies = features[:, : M.NUM_BODIES * 3].view(-1, M.NUM_BODIES, 3)  # (N, 53, 3), the pelvis first
    shift = bodies[:, 0, :2]  # (N, 2) the reference pelvis's horizontal offset, heading frame
    held = features[:, M.NUM_BODIES * 3 + 6] > 0.5  # (N,) the reference's contact label
    out = features.clone()
    out_bodies = out[:, : M.NUM_BODIES * 3].view(-1, M.NUM_BODIES, 3)
    out_bodies[:, :, :2] -= shift[:, None]
    ball = M.NUM_BODIES * 3
    out[:, ball : ball + 2] -= shift * held[:, None]
    return out


def seen_by(policy, features: torch.Tensor) -> torch.Tensor:
    """The reference features (N, REFERENCE_OBS_DIM) as the teacher `policy` (a skillmimic.policy.SkillPolicy) was
    trained to see them: anchored where its file says so (reference_anchor), else as they are."""
    return anchor(features) if getattr(policy, "reference_anchor", False) else features
