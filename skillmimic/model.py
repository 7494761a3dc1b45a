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

import copy
import dataclasses
import functools
import hashlib
import math
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
    ball_restitution: float | None = None
    """The share of its normal speed the ball keeps in a bounce on the floor (0 < e <= 1; e.g. 0.82): lift-off over
    impact speed, sqrt(rebound height / drop height), for an impact at BOUNCE_SPEED (4 m/s; bounce_restitution).
    Why: the recorded balls keep 0.77-0.86 at 3-5.6 m/s impacts, the MJCF's ball-floor pair (solref -7500 -16)
    0.76-0.78 at 2-6 m/s (single bounces 0.72-0.79, by where the impact falls between two steps), so a bouncing
    ball falls behind its recording at every bounce (docs/pickup_study.md, "Ball physics on the floor"). Set, the
    pair's damping is tuned when the model is built (ball_floor_damping) and its stiffness kept; the set value
    then holds within 0.015 from 2 to 6 m/s. None (the default): the MJCF's pair, unchanged."""
    ball_rolling: float | None = None
    """The ball's rolling resistance on the floor: the deceleration (m/s^2) of a ball rolling on it (> 0; e.g.
    0.4). Why: the MJCF's ball-floor pair has no rolling friction (condim 3), so a rolling ball never slows (1.003
    m/s after 2 s from 1), while the recorded rolling balls slow by 0.3-0.6 m/s^2. Set, the pair gets condim 6
    (which also turns on its torsional friction, the MJCF's 0.05 m) and the rolling friction coefficient (m) that
    gives this deceleration to a ball rolling at ROLL_SPEED (1.5 m/s), tuned when the model is built
    (ball_floor_rolling_friction). None (the default): the MJCF's pair, unchanged."""

    def __post_init__(self):
        # A user's values (flags, a policy file): refused in one line (UserError) when made, before anything is built.
        if not self.ball_mass > 0:
            raise UserError(f"ball mass {self.ball_mass}: must be positive")
        if not 0.0 <= self.hand_margin <= 0.05:
            raise UserError(f"hand margin {self.hand_margin}: must be between 0 and 0.05 m")
        for name in ("wrist_kp", "wrist_kd"):
            check_finite_nonnegative(getattr(self, name), f"physics {name}", "0 (keep the MJCF's) or a positive gain")
        if self.ball_restitution is not None and not 0.0 < self.ball_restitution <= 1.0:
            raise UserError(f"physics ball_restitution {self.ball_restitution}: must be within (0, 1] (the share of "
                            f"the normal speed a bounce keeps), or None to keep the MJCF's")
        if self.ball_rolling is not None:
            if not (self.ball_rolling > 0 and math.isfinite(self.ball_rolling)):
                raise UserError(f"physics ball_rolling {self.ball_rolling}: must be a positive deceleration (m/s^2), "
                                f"or None (no rolling resistance, the MJCF's)")

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
    if physics.ball_restitution is not None or physics.ball_rolling is not None:
        set_ball_floor(m, physics.ball_restitution, physics.ball_rolling)
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


BOUNCE_SPEED = 4.0  # m/s: the impact speed at which Physics.ball_restitution holds (the data's bounces: 3-5.6 m/s)
ROLL_SPEED = 1.5  # m/s: the rolling speed at which Physics.ball_rolling holds (the data's rolling balls: 0.4-1.4 m/s)


def set_ball_floor(m: mujoco.MjModel, restitution: float | None, rolling: float | None) -> None:
    """Give the compiled model's ball-floor contact pair this restitution and rolling resistance (Physics'
    ball_restitution and ball_rolling; None leaves that part of the pair as it is), in place.

    Restitution: the pair's solref (-stiffness, -damping) makes the contact a spring and damper in acceleration
    (MuJoCo's reference acceleration -b v - k x, scaled by the impedance); a linear one keeps
    e = exp(-pi z / sqrt(1 - z^2)) of the normal speed, z = b / (2 sqrt(k)) (0.747 for the MJCF's 7500 and 16).
    At 1/120 s the contact lasts only about 4 steps and the force is cut when it would pull, so the damping is
    found numerically instead (ball_floor_damping: bisection on a ball-and-floor model with this pair and these
    options), the stiffness kept. Rolling: condim 6 and rolling friction mu_r (m), a torque of at most mu_r N
    against the roll; for a rolling thin shell (I = 2/3 m r^2) it decelerates the ball by 3 mu_r g / (5 r), only
    a first guess: the pyramidal cone shares the normal force between the sliding and the rolling friction, and
    the tuned mu_r (ball_floor_rolling_friction) is about 1.25 times it (0.0102 m for 0.4 m/s^2)."""
    p = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_PAIR, "ball_floor")
    if p < 0:
        raise ValueError("the model has no 'ball_floor' contact pair")
    if restitution is not None:
        m.pair_solref[p, 1] = -ball_floor_damping(m, restitution)
    if rolling is not None:
        m.pair_dim[p] = 6
        m.pair_friction[p, 3:5] = ball_floor_rolling_friction(m, rolling)


def _ball_floor_model(m: mujoco.MjModel) -> mujoco.MjModel:
    """A ball alone on the floor: m's ball (radius, mass, inertia), m's ball-floor pair and m's options."""
    p = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_PAIR, "ball_floor")
    spec = mujoco.MjSpec()
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.1], contype=0,
                            conaffinity=0)
    body = spec.worldbody.add_body(name="ball", pos=[0, 0, 1])
    body.add_freejoint()
    body.add_geom(name="ball", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[BALL_RADIUS, 0, 0], contype=0,
                  conaffinity=0)
    spec.add_pair(name="ball_floor", geomname1="ball", geomname2="floor")
    small = spec.compile()
    for f in ("timestep", "integrator", "solver", "iterations", "ls_iterations", "tolerance", "ls_tolerance", "cone",
              "impratio", "gravity", "noslip_iterations", "disableflags", "enableflags", "o_margin"):
        setattr(small.opt, f, getattr(m.opt, f))
    for f in ("dim", "friction", "solref", "solreffriction", "solimp", "margin", "gap"):
        getattr(small, "pair_" + f)[0] = getattr(m, "pair_" + f)[p]
    small.body_mass[1], small.body_inertia[1] = m.body_mass[BALL_BODY], m.body_inertia[BALL_BODY]
    mujoco.mj_setConst(small, mujoco.MjData(small))
    return small


def bounce_restitution(m: mujoco.MjModel, speed: float = BOUNCE_SPEED, phases: int = 8) -> float:
    """The ball's restitution on the floor in model m (a ball-and-floor copy of it): dropped to hit the floor at
    `speed` (m/s), sqrt(height it would come back to / height it fell from), from its energy once in the air again.
    At 1/120 s a bounce lasts a few steps and its restitution depends on where the impact falls between two steps
    (4 m/s: 0.70-0.80 for the MJCF's pair): the mean over `phases` drops started a fraction of a step apart."""
    small = _ball_floor_model(m)
    g, dt = -small.opt.gravity[2], small.opt.timestep
    out = []
    for k in range(phases):
        d = mujoco.MjData(small)
        d.qpos[2] = BALL_RADIUS + 0.01 + k / phases * speed * dt
        d.qvel[2] = -np.sqrt(speed**2 - 2 * g * (d.qpos[2] - BALL_RADIUS))  # hits the floor at `speed`
        touched = False
        for _ in range(round(2.0 / dt)):
            mujoco.mj_step(small, d)
            touched |= d.ncon > 0 and d.qpos[2] < BALL_RADIUS
            if touched and d.qvel[2] > 0 and d.ncon == 0:  # in the air again: its energy is its height's
                out.append(np.sqrt((d.qvel[2] ** 2 + 2 * g * (d.qpos[2] - BALL_RADIUS))) / speed)
                break
        else:
            out.append(0.0)  # it stayed on the floor (overdamped)
    return float(np.mean(out))


def rolling_deceleration(m: mujoco.MjModel, speed: float = ROLL_SPEED, seconds: float = 1.0) -> float:
    """The deceleration (m/s^2) of the ball rolling on the floor at `speed` (m/s) in model m (a ball-and-floor copy
    of it): its mean over `seconds`, after a settling tenth of a second."""
    small = _ball_floor_model(m)
    d = mujoco.MjData(small)
    d.qpos[2] = BALL_RADIUS
    d.qvel[0], d.qvel[4] = speed, speed / BALL_RADIUS  # rolling along x: spin about y (ball frame = world here)
    n0, n = round(0.1 / small.opt.timestep), round((0.1 + seconds) / small.opt.timestep)
    for i in range(n):
        mujoco.mj_step(small, d)
        if i + 1 == n0:
            v0 = d.qvel[0]
    return float((v0 - d.qvel[0]) / ((n - n0) * small.opt.timestep))


def ball_floor_damping(m: mujoco.MjModel, restitution: float) -> float:
    """The ball-floor pair's damping (solref[1] = -damping, its stiffness -solref[0] kept) at which the ball keeps
    `restitution` of its speed in a bounce at BOUNCE_SPEED (bounce_restitution): bisection to 1e-4 of e."""
    p = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_PAIR, "ball_floor")
    if m.pair_solref[p, 0] >= 0:
        raise ValueError("the ball-floor pair's solref must be (-stiffness, -damping) to set its restitution")
    trial = copy.copy(m)

    def e(b: float) -> float:
        trial.pair_solref[p, 1] = -b
        return bounce_restitution(trial)

    lo, hi = 0.0, 4.0 * np.sqrt(-m.pair_solref[p, 0])  # e falls as the damping grows
    if e(lo) < restitution:
        raise UserError(f"physics ball_restitution {restitution}: this contact keeps at most {e(lo):.3f} "
                        f"(no damping)")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        r = e(mid)
        if abs(r - restitution) < 1e-4:
            return mid
        lo, hi = (mid, hi) if r > restitution else (lo, mid)
    return 0.5 * (lo + hi)


def ball_floor_rolling_friction(m: mujoco.MjModel, deceleration: float) -> float:
    """The ball-floor pair's rolling friction coefficient (m) at which the ball rolling at ROLL_SPEED slows by
    `deceleration` (m/s^2) under condim 6 (rolling_deceleration): from 3 mu_r g / (5 r), then secant steps."""
    p = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_PAIR, "ball_floor")
    trial = copy.copy(m)
    trial.pair_dim[p] = 6

    def a(mu: float) -> float:
        trial.pair_friction[p, 3:5] = mu
        return rolling_deceleration(trial)

    g = -m.opt.gravity[2]
    mu0 = 5 * BALL_RADIUS * deceleration / (3 * g)
    a0 = a(mu0)
    mu1 = mu0 * deceleration / a0
    for _ in range(8):
        a1 = a(mu1)
        if abs(a1 - deceleration) < 1e-3 * max(deceleration, 1.0):
            break
        mu0, a0, mu1 = mu1, a1, max(mu1 + (deceleration - a1) * (mu1 - mu0) / (a1 - a0), 0.0)
    return float(mu1)


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
