"""The humanoid + ball model: its MJCF files (one per hand), their state layouts, and the map from dataset frames
to qpos.

Hands (`HANDS`; tools/make_model.py writes them): every file has the same 53 humanoid bodies in the same order,
the same geoms and the ball; they differ only in which finger hinges they keep.
    full        every joint three hinges x, y, z: 156 hinges (qpos 170, qvel 168)
    anatomical  knuckles y and z, the other finger joints z, the thumb's base x, y, z and its other joints x:
                108 hinges (qpos 122, qvel 120)
    hinge1      one hinge per finger joint (z; the thumb's outer joints x), the thumb's base three: 100 hinges
    rigid       no finger hinges, the fingers fixed flat on the palm (the data's median pose): 66 hinges (qpos 80)
`load_spec(hand)` describes one file (`ModelSpec`): its hinges, its state layout and its hash. Nothing else in
the package assumes a number of hinges.

State layout (MuJoCo's, fixed by the MJCF's body order, which is the dataset's), D = spec.num_dofs:
    qpos (14 + D,) = root position (3) | root quaternion wxyz (4) | D hinge angles | ball position (3) | ball quat (4)
    qvel (12 + D,) = root linear velocity, world (3) | root angular velocity, root frame (3) | D hinge velocities
                     | ball linear velocity, world (3) | ball angular velocity, ball frame (3)
    bodies: 0 world, 1..53 the humanoid in the dataset's order (Pelvis first, R_Thumb3 last), 54 the ball.

Dataset joint triplets <-> hinges: joint j's triplet v (columns 9+3j : 12+3j) is an exponential map, the
joint's local rotation R = exp(v). The full model has hinges j_x, j_y, j_z which MuJoCo applies in that order
about the already-turned axes, so R = Rx(a) Ry(b) Rz(c). `expmap_to_dof` takes the triplets to (a, b, c) for
all 52 joints (the full layout, 156 angles) through the quaternion of exp(v); `dof_to_expmap` goes back. Both
are exact (up to float rounding) away from b = +-90 degrees, where (a, c) is not unique but R still is. Another
hand keeps some of these angles, picked by hinge name (`ModelSpec.dof_index`); the angles of the hinges it drops
are set to zero (a finger joint with no hinge left is the MJCF's fixed rotation).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path
from typing import Literal, get_args

import mujoco
import numpy as np
import torch

from skillmimic import rotations
from skillmimic.errors import UserError, check_finite_nonnegative

Hand = Literal["full", "anatomical", "hinge1", "rigid"]
HANDS: tuple[str, ...] = get_args(Hand)
ASSETS = Path(__file__).parent / "assets"

NUM_BODIES = 53  # humanoid bodies, Pelvis first (the dataset's order)
NUM_JOINTS = 52  # the dataset's joints (every body but the Pelvis), each a rotation
FULL_DOFS = 3 * NUM_JOINTS  # 156: the full layout, x, y, z of each joint (expmap_to_dof's output)
ROOT_QPOS = slice(0, 7)
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


def model_path(hand: str) -> Path:
    """The MJCF of a hand: assets/humanoid_ball.xml for the full hand, assets/humanoid_ball_<hand>.xml otherwise."""
    if hand not in HANDS:
        raise ValueError(f"unknown hand {hand!r}; choose one of {', '.join(HANDS)}")
    return ASSETS / ("humanoid_ball.xml" if hand == "full" else f"humanoid_ball_{hand}.xml")


BALL_RADIUS = 0.12  # m, the MJCF's ball (tools/make_model.py)
FIBA_BALL_MASS = 0.6  # kg, the MJCF's ball: a size-7 basketball (FIBA: 567-650 g)
# SkillMimic's box hand (../shared/reference/mocap_humanoid_boxhand.xml): a 12 x 2 x 8 cm box on each wrist,
# centred 3 cm towards the fingers (x is the forearm's axis, mirrored on the left), half sizes in m.
PALM_HALF_SIZE = (0.06, 0.01, 0.04)
PALM_POS = {"L_Wrist": (0.03, 0.005, 0.01), "R_Wrist": (-0.03, 0.005, 0.01)}
LEGACY_HAND_MARGIN = 0.015  # m: the hand's push distance under MuJoCo 4 in files made before Physics.hand_margin


@dataclasses.dataclass(frozen=True)
class Physics:
    """Physical options applied over a hand's MJCF when it is compiled (policy files record them, and the
    evaluation and play.py simulate a policy with its own)."""

    ball_mass: float = FIBA_BALL_MASS
    """The ball's mass (kg), always a thin shell of the same size (I = 2/3 m r^2). FIBA's 0.6 by default;
    SkillMimic's ball (a sphere of density 1000) weighs 7.2 kg. The ball-floor bounce does not depend on it."""
    palm: bool = False
    """Add SkillMimic's box palm (12 x 2 x 8 cm) to each wrist: the model's hand otherwise has a 1 cm capsule
    for a palm, so the ball rests on the finger capsules alone."""
    hand_margin: float = 0.0
    """How far (m) from a hand geom (wrist, palm, fingers) its contacts start to push. The MJCFs give the hands
    margin = gap = 1.5 cm, written for MuJoCo 3, where a contact is listed from `margin` away and pushes only
    within `margin - gap` (here: on overlap). MuJoCo 4 lists it from `margin + gap` and pushes within `margin`,
    so those files put a 1.5 cm cushion around every hand: the ball floats 1.5 cm off each finger, the data's
    grips are out of reach, and a reference start in the carry pops the ball out of the hand (with the humanoid
    replayed kinematically, tools/ball_replay.py: the ball strays 15 cm from the layup's reference by frame 3;
    without the cushion by frame 12). 0 restores the intended contact: pushes on overlap, listed (for the
    contact graph) from 1.5 cm. Policy files that record no value were trained with the cushion and load with
    LEGACY_HAND_MARGIN."""
    wrist_kp: float = 0.0
    """Stiffness (N m/rad) of both wrists' PD position actuators (x, y, z); 0 keeps the MJCF's 100, the softest
    joint of the arm (shoulder 400, elbow 300). Why: in the layup the hand must roll over the 0.6 kg ball and push
    it to the floor, then cushion it coming back up at about 3 m/s, and every failed episode of round 6 lost the
    ball there (docs/llc_recipe.md, "What limits it"). The hand is light, so the wrist's PD is overdamped: it
    follows a target with a lag of about kd / kp (0.1 s, six control steps, at the MJCF's 100 and 10), and a
    torque impulse the size of the catch's (0.1 N m s) bends it by about half a degree. Raising kp alone shortens
    the lag (300: about 0.03 s); raising kp and kd together stiffens the wrist but keeps the lag
    (tests/test_model.py). A policy's targets lead the lag it was trained with: round 6's layup policy, evaluated
    unchanged, keeps its success with kp and kd x3 (42% against 45%) and loses it with kp alone (2%;
    results/round8/). Not measured in training yet (round 8)."""
    wrist_kd: float = 0.0
    """Damping (N m s/rad) of the wrists' hinges, the D of their PD (MuJoCo's joint damping, implicit in the Euler
    integrator); 0 keeps the MJCF's 10 (a tenth of kp, as at every joint of the MJCF). Not measured yet (round 8)."""

    def __post_init__(self):
        # A user's values (flags, a policy file): refused in one line (UserError) when made, before anything is built.
        if not self.ball_mass > 0:
            raise UserError(f"ball mass {self.ball_mass}: must be positive")
        if not 0.0 <= self.hand_margin <= 0.05:
            raise UserError(f"hand margin {self.hand_margin}: must be between 0 and 0.05 m")
        for name in ("wrist_kp", "wrist_kd"):
            check_finite_nonnegative(getattr(self, name), f"physics {name}", "0 (keep the MJCF's) or a positive gain")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict | None) -> "Physics":
        """What a policy file records. Absent in older files: the defaults (the wrists' gains: the MJCF's), but
        for the hand's margin, which is the cushion they were trained with (LEGACY_HAND_MARGIN)."""
        return Physics(**{"hand_margin": LEGACY_HAND_MARGIN, **(d or {})})


def load_model(hand: str = "full", self_collision: bool = False, physics: Physics = Physics()) -> mujoco.MjModel:
    """Compile a hand's MJCF with the given physical options. With `self_collision` the humanoid's geoms also
    collide with each other (not with their parent's); without it (the default, faster) they touch only the floor
    and the ball."""
    path = model_path(hand)
    try:
        if physics.palm:  # a geom is added before compiling (MjSpec); masses and inertias follow
            spec = mujoco.MjSpec.from_file(str(path))
            for wrist, pos in PALM_POS.items():
                g = spec.body(wrist).add_geom(spec.find_default("hand"))
                g.type, g.size, g.pos = mujoco.mjtGeom.mjGEOM_BOX, list(PALM_HALF_SIZE), list(pos)
            m = spec.compile()
        else:
            m = mujoco.MjModel.from_xml_path(str(path))
    except Exception as e:  # mujoco raises ValueError with a multi-line message
        raise ValueError(f"{path}: cannot compile the model: {str(e).splitlines()[0]}") from None
    if m.nbody != NUM_BODIES + 2 or m.body(BALL_BODY).name != "ball":
        raise ValueError(f"{path}: expected {NUM_BODIES} humanoid bodies and the ball; got {m.nbody - 1} bodies")
    for i, name in enumerate(BODY_NAMES):
        if m.body(i + 1).name != name:
            raise ValueError(f"{path}: body {i + 1} is {m.body(i + 1).name!r}, expected {name!r}")
    if physics.ball_mass != FIBA_BALL_MASS:
        set_ball_mass(m, physics.ball_mass)
    # Pushes within the margin (MuJoCo 4); listed within margin + the MJCF's gap of 1.5 cm (legacy: 1.5 + 1.5 cm).
    m.geom_margin[hand_geoms(m)] = physics.hand_margin
    # The wrists' gains (MuJoCo Warp's model is made from this one: sim.WarpSim).
    joints, actuators = wrist_joints(m)
    if physics.wrist_kp > 0:  # a position actuator's force: gain * ctrl + bias1 * qpos, gain = kp = -bias1
        m.actuator_gainprm[actuators, 0] = physics.wrist_kp
        m.actuator_biasprm[actuators, 1] = -physics.wrist_kp
    if physics.wrist_kd > 0:
        m.dof_damping[m.jnt_dofadr[joints]] = physics.wrist_kd
    if self_collision:
        humanoid = (m.geom_bodyid >= 1) & (m.geom_bodyid <= NUM_BODIES)
        m.geom_conaffinity[humanoid] = 3
    return m


def hand_geoms(m: mujoco.MjModel) -> np.ndarray:
    """(ngeom,) bool: the geoms of the hands' bodies (wrists, palms, fingers) in a compiled model."""
    return np.isin(m.geom_bodyid, np.asarray(LEFT_HAND + RIGHT_HAND) + 1)  # body ids: the Pelvis is 1


WRISTS = ("L_Wrist", "R_Wrist")


def wrist_joints(m: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
    """The wrists' hinges in a compiled model, and the actuators that drive them: joint ids (6,), actuator ids (6,)
    (x, y, z of the left wrist, then of the right)."""
    bodies = [m.body(w).id for w in WRISTS]
    joints = np.flatnonzero(np.isin(m.jnt_bodyid, bodies) & (m.jnt_type == mujoco.mjtJoint.mjJNT_HINGE))
    actuators = np.flatnonzero(np.isin(m.actuator_trnid[:, 0], joints)
                               & (m.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT))
    return joints, actuators


def set_ball_mass(m: mujoco.MjModel, mass: float) -> None:
    """Give the compiled model's ball this mass (kg), a thin shell of the same size (I = 2/3 m r^2), in place.
    The compiler's constants that follow the masses (subtree masses, the inverse weights that scale the
    constraints' softness) are computed again: left stale (as until round 5), a 7.2 kg ball had a subtree of 0.6
    kg, and plain MuJoCo and MuJoCo Warp parted by 4.5 mm after one control step and 0.5 m after 60
    (tests/test_sim.py)."""
    m.body_mass[BALL_BODY] = mass
    m.body_inertia[BALL_BODY] = 2.0 / 3.0 * mass * BALL_RADIUS**2
    mujoco.mj_setConst(m, mujoco.MjData(m))


# The model's arrays that set_ball_mass changes (a simulator that holds its own copy of the model copies these).
BALL_MASS_FIELDS = ("body_mass", "body_inertia", "body_subtreemass", "body_invweight0", "dof_invweight0")


@dataclasses.dataclass(frozen=True, eq=False)
class ModelSpec:
    """What the package needs to know of one hand's model: its hinges, its state layout, and its file's hash.

    hand: the variant (one of HANDS). path: its MJCF; sha256: of the file's bytes (policy files record it).
    hinges: the actuated hinges in qpos order, named <body>_<axis> ('L_Index1_z'); actuator i drives hinge i.
    dof_index: (num_dofs,) long: each hinge's column in the full layout of expmap_to_dof, 3 * joint + axis.
    """

    hand: str
    path: Path
    sha256: str
    hinges: tuple[str, ...]
    dof_index: torch.Tensor

    @property
    def num_dofs(self) -> int:
        """Actuated hinges (the policy's actions)."""
        return len(self.hinges)

    @property
    def nq(self) -> int:
        return 14 + self.num_dofs

    @property
    def nv(self) -> int:
        return 12 + self.num_dofs

    @property
    def dof_qpos(self) -> slice:
        return slice(7, 7 + self.num_dofs)

    @property
    def ball_qpos(self) -> slice:
        return slice(7 + self.num_dofs, 14 + self.num_dofs)

    @property
    def dof_qvel(self) -> slice:
        return slice(6, 6 + self.num_dofs)

    @property
    def ball_qvel(self) -> slice:
        return slice(6 + self.num_dofs, 12 + self.num_dofs)

    def dof_from_expmap(self, joint_expmap: torch.Tensor) -> torch.Tensor:
        """Dataset joint triplets -> this model's hinge angles (the kept ones of the exact x-y-z decomposition).
        (..., 52, 3) -> (..., num_dofs)."""
        return expmap_to_dof(joint_expmap)[..., self.dof_index.to(joint_expmap.device)]


@functools.lru_cache(maxsize=None)
def load_spec(hand: str = "full") -> ModelSpec:
    """Describe a hand's model from its MJCF: the free joints of the root (first) and the ball (last) around
    hinges named <body>_<x|y|z> about that axis, in body order. Read once per process."""
    m = load_model(hand)
    path = model_path(hand)
    free = mujoco.mjtJoint.mjJNT_FREE
    if m.njnt < 2 or m.jnt_type[0] != free or m.jnt_type[m.njnt - 1] != free or m.joint(m.njnt - 1).name != "ball":
        raise ValueError(f"{path}: expected the root's free joint first and the ball's last")
    hinges, index = [], []
    for j in range(1, m.njnt - 1):
        name, body = m.joint(j).name, m.body(m.jnt_bodyid[j]).name
        axis = "xyz".find(name[-1])
        if (m.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE or name != f"{body}_{name[-1]}" or axis < 0
                or list(m.jnt_axis[j]) != [float(axis == k) for k in range(3)] or m.jnt_qposadr[j] != 6 + j):
            raise ValueError(f"{path}: joint {j} ({name!r}) is not a hinge <body>_<x|y|z> of its body, in order")
        if m.actuator_trnid[j - 1, 0] != j:
            raise ValueError(f"{path}: actuator {j - 1} does not drive hinge {name!r}")
        hinges.append(name)
        index.append(3 * (BODY_NAMES.index(body) - 1) + axis)
    if m.nu != len(hinges):
        raise ValueError(f"{path}: {m.nu} actuators for {len(hinges)} hinges")
    return ModelSpec(hand=hand, path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                     hinges=tuple(hinges), dof_index=torch.tensor(index, dtype=torch.long))


def geom_body_table(m: mujoco.MjModel) -> torch.Tensor:
    """Per geom: 0..52 the humanoid body (dataset order), 53 the ball, -1 the floor or anything else. (ngeom,)"""
    body = torch.as_tensor(m.geom_bodyid, dtype=torch.long) - 1
    return torch.where((body >= 0) & (body <= NUM_BODIES), body, torch.full_like(body, -1))


def expmap_to_dof(joint_expmap: torch.Tensor) -> torch.Tensor:
    """Dataset joint triplets -> the full layout's hinge angles. (..., 52, 3) -> (..., 156)."""
    return rotations.expmap_to_euler_xyz(joint_expmap).flatten(-2)


def dof_to_expmap(dof: torch.Tensor) -> torch.Tensor:
    """The full layout's hinge angles -> dataset joint triplets. (..., 156) -> (..., 52, 3)."""
    return rotations.euler_xyz_to_expmap(dof.unflatten(-1, (NUM_JOINTS, 3)))


def forward_kinematics(m: mujoco.MjModel, qpos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World positions and orientations of the 53 humanoid bodies for each row of qpos, on the CPU with MuJoCo.

    qpos (F, m.nq) -> body_pos (F, 53, 3), body_quat (F, 53, 4) wxyz, float64. About 30 us a frame.
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
