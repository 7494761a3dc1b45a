"""The humanoid + ball model: where its MJCF lives, its state layout, and the map between dataset frames and qpos.

State layout (MuJoCo's, fixed by the MJCF's body order, which is the dataset's):
    qpos (170,) = root position (3) | root quaternion wxyz (4) | 156 hinge angles | ball position (3) | ball quat (4)
    qvel (168,) = root linear velocity, world (3) | root angular velocity, root frame (3) | 156 hinge velocities
                  | ball linear velocity, world (3) | ball angular velocity, ball frame (3)
    bodies: 0 world, 1..53 the humanoid in the dataset's order (Pelvis first, R_Thumb3 last), 54 the ball.

Dataset joint triplets <-> hinges: joint j's triplet v (columns 9+3j : 12+3j) is an exponential map, the
joint's local rotation R = exp(v). The model has hinges j_x, j_y, j_z (qpos 7+3j, 8+3j, 9+3j) which MuJoCo
applies in that order about the already-turned axes, so R = Rx(a) Ry(b) Rz(c). `expmap_to_dof` takes the
triplets to (a, b, c) through the quaternion of exp(v); `dof_to_expmap` goes back. Both are exact (up to float
rounding) away from b = +-90 degrees, where (a, c) is not unique but R still is.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import torch

from skillmimic import rotations

MODEL_PATH = Path(__file__).parent / "assets" / "humanoid_ball.xml"

NUM_BODIES = 53  # humanoid bodies, Pelvis first (the dataset's order)
NUM_JOINTS = 52  # three-hinge joints (every body but the Pelvis)
NUM_DOFS = 3 * NUM_JOINTS  # 156 actuated hinges
ROOT_QPOS = slice(0, 7)
DOF_QPOS = slice(7, 7 + NUM_DOFS)
BALL_QPOS = slice(7 + NUM_DOFS, 14 + NUM_DOFS)
DOF_QVEL = slice(6, 6 + NUM_DOFS)
BALL_QVEL = slice(6 + NUM_DOFS, 12 + NUM_DOFS)
NQ = 14 + NUM_DOFS
NV = 12 + NUM_DOFS
BALL_BODY = NUM_BODIES + 1  # MuJoCo body id of the ball

BODY_NAMES = (
    "Pelvis", "L_Hip", "L_Knee", "L_Ankle", "L_Toe", "R_Hip", "R_Knee", "R_Ankle", "R_Toe",
    "Torso", "Spine", "Spine2", "Chest", "Neck", "Head",
    "L_Thorax", "L_Shoulder", "L_Elbow", "L_Wrist",
    "L_Index1", "L_Index2", "L_Index3", "L_Middle1", "L_Middle2", "L_Middle3",
    "L_Pinky1", "L_Pinky2", "L_Pinky3", "L_Ring1", "L_Ring2", "L_Ring3", "L_Thumb1", "L_Thumb2", "L_Thumb3",
    "R_Thorax", "R_Shoulder", "R_Elbow", "R_Wrist",
    "R_Index1", "R_Index2", "R_Index3", "R_Middle1", "R_Middle2", "R_Middle3",
    "R_Pinky1", "R_Pinky2", "R_Pinky3", "R_Ring1", "R_Ring2", "R_Ring3", "R_Thumb1", "R_Thumb2", "R_Thumb3",
)
# Indices into BODY_NAMES (0 = Pelvis) of each hand: the wrist and its 15 finger bodies.
LEFT_HAND = tuple(range(BODY_NAMES.index("L_Wrist"), BODY_NAMES.index("L_Thumb3") + 1))
RIGHT_HAND = tuple(range(BODY_NAMES.index("R_Wrist"), BODY_NAMES.index("R_Thumb3") + 1))
FEET = tuple(BODY_NAMES.index(n) for n in ("L_Ankle", "L_Toe", "R_Ankle", "R_Toe"))
# The bodies the data lets touch the floor; any other body on the floor is a fall.
FLOOR_BODIES = LEFT_HAND + RIGHT_HAND + FEET


def body_mask(indices: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """(NUM_BODIES,) bool, True at the given body indices."""
    mask = torch.zeros(NUM_BODIES, dtype=torch.bool, device=device)
    mask[list(indices)] = True
    return mask


def load_model(self_collision: bool = False, path: Path | str = MODEL_PATH) -> mujoco.MjModel:
    """Compile the MJCF. With `self_collision` the humanoid's geoms also collide with each other (not with their
    parent's); without it (the default, faster) they touch only the floor and the ball."""
    try:
        m = mujoco.MjModel.from_xml_path(str(path))
    except Exception as e:  # mujoco raises ValueError with a multi-line message
        raise ValueError(f"{path}: cannot compile the model: {str(e).splitlines()[0]}") from None
    if m.nq != NQ or m.nv != NV or m.nbody != NUM_BODIES + 2:
        raise ValueError(f"{path}: expected nq={NQ}, nv={NV}, {NUM_BODIES + 2} bodies; got {m.nq}, {m.nv}, {m.nbody}")
    for i, name in enumerate(BODY_NAMES):
        if m.body(i + 1).name != name:
            raise ValueError(f"{path}: body {i + 1} is {m.body(i + 1).name!r}, expected {name!r}")
    if self_collision:
        humanoid = (m.geom_bodyid >= 1) & (m.geom_bodyid <= NUM_BODIES)
        m.geom_conaffinity[humanoid] = 3
    return m


def geom_body_table(m: mujoco.MjModel) -> torch.Tensor:
    """Per geom: 0..52 the humanoid body (dataset order), 53 the ball, -1 the floor or anything else. (ngeom,)"""
    body = torch.as_tensor(m.geom_bodyid, dtype=torch.long) - 1
    return torch.where((body >= 0) & (body <= NUM_BODIES), body, torch.full_like(body, -1))


def expmap_to_dof(joint_expmap: torch.Tensor) -> torch.Tensor:
    """Dataset joint triplets -> hinge angles. (..., 52, 3) -> (..., 156)."""
    return rotations.expmap_to_euler_xyz(joint_expmap).flatten(-2)


def dof_to_expmap(dof: torch.Tensor) -> torch.Tensor:
    """Hinge angles -> dataset joint triplets. (..., 156) -> (..., 52, 3)."""
    return rotations.euler_xyz_to_expmap(dof.unflatten(-1, (NUM_JOINTS, 3)))


def forward_kinematics(m: mujoco.MjModel, qpos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World positions and orientations of the 53 humanoid bodies for each row of qpos, on the CPU with MuJoCo.

    qpos (F, 170) -> body_pos (F, 53, 3), body_quat (F, 53, 4) wxyz, float64. About 30 us a frame.
    """
    data = mujoco.MjData(m)
    q = qpos.detach().to("cpu", torch.float64).numpy()
    pos = torch.empty(q.shape[0], NUM_BODIES, 3, dtype=torch.float64)
    quat = torch.empty(q.shape[0], NUM_BODIES, 4, dtype=torch.float64)
    pos_np, quat_np = pos.numpy(), quat.numpy()
    for t in range(q.shape[0]):
        data.qpos[:] = q[t]
        mujoco.mj_kinematics(m, data)
        pos_np[t] = data.xpos[1 : NUM_BODIES + 1]
        quat_np[t] = data.xquat[1 : NUM_BODIES + 1]
    return pos, quat
