"""One simulator interface over two engines: MuJoCo Warp (GPU, or Warp's CPU device) and plain MuJoCo (CPU).

`make_sim(SimConfig(...), num_worlds, device)` returns a `Simulator`: N independent worlds of the humanoid + ball
(with the hand that `SimConfig.hand` names; `sim.spec` describes its model, skillmimic.model.ModelSpec), whose
state and derived quantities are torch tensors with the world as the first dimension. On MuJoCo Warp they are zero-copy
views of Warp's arrays, so writing into them (in place: `sim.ctrl[:] = ...`, `sim.qpos[ids] = ...`) changes the
simulation; plain MuJoCo keeps the same tensors and copies them to and from its MjData each step.

One `step()` is one control step: `substeps` physics steps with the current `ctrl` (PD targets of the model's
hinges), then MuJoCo's kinematics, centre-of-mass velocities and collision detection once more, so that body
poses, velocities and contacts describe the state after the step (after `mj_step` alone they would lag one
physics step). The rest of MuJoCo's forward pass (mass matrix, constraints) is left to the next `mj_step`, which
recomputes it anyway. On a GPU the whole control step is one captured CUDA graph.

Contact flags come from MuJoCo's contact list, which names the two geoms of every contact: exact pairs, not
force thresholds. A world whose state turns non-finite or whose speed explodes, or whose constraints did not fit
its buffer (MuJoCo Warp dropped some of its contact rows), is flagged in `unstable`, put in a safe default state
so that it cannot disturb later steps, and waits for the caller to `reset` it; the other worlds are untouched.

To add an engine, subclass `Simulator` and fill the raw tensors listed in its docstring.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import mujoco
import numpy as np
import torch

from skillmimic import model as M
from skillmimic import rotations
from skillmimic.device import resolve_device


Backend = Literal["auto", "mujoco_warp", "mujoco"]


@dataclasses.dataclass
class SimConfig:
    hand: M.Hand = "full"
    """The hand's articulation (skillmimic.model): 'full' (3 hinges per finger joint, 156 hinges in all),
    'anatomical' (108), 'hinge1' (100) or 'rigid' (fingers fixed on the palm, 66)."""
    backend: Backend = "auto"
    """'mujoco_warp', 'mujoco' (CPU), or 'auto': MuJoCo Warp on a GPU, plain MuJoCo on the CPU."""
    substeps: int = 2
    """Physics steps (1/120 s each) per control step."""
    self_collision: bool = False
    """Let the humanoid's bodies collide with each other (slower; off in the paper's setting)."""
    physics: M.Physics = dataclasses.field(default_factory=M.Physics)
    """The ball's mass, the palm, the hands' margin, the wrists' gains and the ball's bounce and roll on the floor
    (skillmimic.model.Physics)."""
    nconmax: int = 48
    """MuJoCo Warp: contact slots per world, pooled over all worlds (about 14 are used on average, 25 in the
    dataset's own poses; a humanoid lying on the floor uses about 20, one sunk into it up to 94). Contacts beyond
    the pool are dropped with a warning ("narrowphase overflow") from any world."""
    njmax: int = 384
    """MuJoCo Warp: constraint rows per world (each contact with the floor or the ball takes 4). About 57 on
    average; with plain MuJoCo, a third of the dataset's own poses need up to 176 and random skill choices in the
    high-level tasks up to 220 (every third of 57,600 world-steps); 256 overflowed in high-level training. A world
    that needs more is flagged unstable."""
    iterations: int | None = None
    """Override the constraint solver's iteration limit (the model's: 8, as good as converged; 5 is about 5%
    faster on the GPU but drifts centimetres from the converged motion)."""
    ls_iterations: int | None = None
    """Override the solver's line-search iteration limit (the model's: 10)."""
    tolerance: float | None = None
    """Override the solver's tolerance for early termination (the model's: MuJoCo's default, 1e-8)."""
    max_speed: float = 200.0
    """A world with any |qvel| above this (m/s or rad/s) is flagged unstable."""
    cuda_graph: bool = True
    """MuJoCo Warp on a GPU: capture the control step as a CUDA graph."""


# Contact classes of the geoms (contact_flags): 0..52 the humanoid's bodies (Pelvis first), then these.
BALL_CLASS = M.NUM_BODIES  # 53
FLOOR_CLASS = M.NUM_BODIES + 1  # 54
OTHER_CLASS = M.NUM_BODIES + 2  # 55: anything else
NUM_CLASSES = M.NUM_BODIES + 3  # 56


def contact_flags(
    geom_pair: torch.Tensor, valid: torch.Tensor, world: torch.Tensor, geom_class: torch.Tensor, num_worlds: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which geom classes touch the ball and the floor, per world.

    geom_pair (K, 2) geom ids of K contacts, valid (K,) bool, world (K,) world ids; geom_class (ngeom,) maps a
    geom to 0..52 (humanoid body), BALL_CLASS (53), FLOOR_CLASS (54) or OTHER_CLASS (55).
    Returns touch_ball (N, 56) and touch_floor (N, 56), bool: column c is true when something of class c
    touches the ball (the floor). No Python loop; invalid contacts land in a spare row that is dropped.
    """
    ball, floor = BALL_CLASS, FLOOR_CLASS
    cls = geom_class[geom_pair.long()]  # (K, 2)
    a, b = cls[:, 0], cls[:, 1]
    w = torch.where(valid, world.long(), torch.full_like(world.long(), num_worlds))
    out_ball = torch.zeros(num_worlds + 1, NUM_CLASSES, dtype=torch.bool, device=geom_pair.device)
    out_floor = torch.zeros(num_worlds + 1, NUM_CLASSES, dtype=torch.bool, device=geom_pair.device)
    spare = torch.full_like(w, num_worlds)
    true = torch.ones_like(valid)
    out_ball.index_put_((torch.where(a == ball, w, spare), b), true)
    out_ball.index_put_((torch.where(b == ball, w, spare), a), true)
    out_floor.index_put_((torch.where(a == floor, w, spare), b), true)
    out_floor.index_put_((torch.where(b == floor, w, spare), a), true)
    return out_ball[:num_worlds], out_floor[:num_worlds]


def load_configured_model(cfg: SimConfig) -> mujoco.MjModel:
    """The model of cfg's hand with cfg's collision and solver settings applied."""
    mjm = M.load_model(cfg.hand, cfg.self_collision, cfg.physics)
    if cfg.iterations is not None:
        mjm.opt.iterations = cfg.iterations
    if cfg.ls_iterations is not None:
        mjm.opt.ls_iterations = cfg.ls_iterations
    if cfg.tolerance is not None:
        mjm.opt.tolerance = cfg.tolerance
    return mjm


class Simulator:
    """N worlds of the humanoid + ball. Every tensor below has the world as its first dimension.

    State (write in place to change it): qpos (N, nq), qvel (N, nv), ctrl (N, num_dofs) of `spec`, the model
    (170, 168 and 156 for the full hand). Layout: skillmimic.model.
    Humanoid bodies, in the dataset's order (Pelvis first), world frame:
        body_pos_w (N, 53, 3), body_quat_w (N, 53, 4) wxyz, body_lin_vel_w (N, 53, 3) at the body origin,
        body_ang_vel_w (N, 53, 3).
    Ball: ball_pos_w (N, 3), ball_quat_w (N, 4), ball_lin_vel_w (N, 3), ball_ang_vel_w (N, 3), world frame.
    ball_force_w (N, 3): an external force on the ball's centre (N, world frame), held through the next steps
        until changed (write in place; 0 after construction). The imitation environment's ball assist uses it.
    Contacts (bool): body_ball_contact (N, 53) each humanoid body with the ball; hand_ball_contact (N, 2) left,
        right hand (wrist or fingers) with the ball; ball_floor_contact (N,); body_floor_contact (N, 53).
    unstable (N,) bool: the world blew up in the last step (see the module docstring).

    A backend provides raw tensors qpos, qvel, ctrl, _xpos (N, 55, 3), _xquat (N, 55, 4), _cvel (N, 55, 6),
    _subtree_com (N, 55, 3), _qacc_warmstart (N, nv), _xfrc (N, 55, 6) (MuJoCo's xfrc_applied), and implements
    _physics_step(), _forward(collide) and _contacts() -> (geom_pair (K, 2), valid (K,), world (K,)); it may replay
    _check_and_update and _update_derived from graphs by overriding _after_physics and _derive.
    """

    backend = ""

    def __init__(self, cfg: SimConfig, mjm: mujoco.MjModel, num_worlds: int, device: torch.device):
        self.cfg = cfg
        self.num_worlds = num_worlds
        self.device = device
        self.model = mjm
        self.spec = M.load_spec(cfg.hand)
        self.dt = cfg.substeps * float(mjm.opt.timestep)  # control step, s
        gb = M.geom_body_table(mjm)  # -1 floor/other, 0..52 humanoid, 53 ball (= BALL_CLASS)
        floor = int(mujoco.mj_name2id(mjm, mujoco.mjtObj.mjOBJ_GEOM, "floor"))
        cls = torch.where(gb >= 0, gb, torch.full_like(gb, OTHER_CLASS))
        cls[floor] = FLOOR_CLASS
        self._geom_class = cls.to(device)
        # The state a world is put in when it blows up: the model's default pose, at rest.
        data0 = mujoco.MjData(mjm)
        mujoco.mj_kinematics(mjm, data0)
        f32 = dict(dtype=torch.float32, device=device)
        self._safe_qpos = torch.as_tensor(data0.qpos, **f32)
        self._safe_xpos = torch.as_tensor(data0.xpos, **f32)
        self._safe_xquat = torch.as_tensor(data0.xquat, **f32)
        N, nb = self.num_worlds, M.NUM_BODIES
        self.body_lin_vel_w = torch.zeros(N, nb, 3, **f32)
        self.body_ang_vel_w = torch.zeros(N, nb, 3, **f32)
        self.ball_ang_vel_w = torch.zeros(N, 3, **f32)
        self.body_ball_contact = torch.zeros(N, nb, dtype=torch.bool, device=device)
        self.body_floor_contact = torch.zeros(N, nb, dtype=torch.bool, device=device)
        self.ball_floor_contact = torch.zeros(N, dtype=torch.bool, device=device)
        self.hand_ball_contact = torch.zeros(N, 2, dtype=torch.bool, device=device)
        self.unstable = torch.zeros(N, dtype=torch.bool, device=device)
        self._left = torch.tensor(M.LEFT_HAND, device=device)
        self._right = torch.tensor(M.RIGHT_HAND, device=device)

    def set_ball_mass(self, mass: float) -> None:
        """Give the ball this mass (kg) in every world from the next step on (a ball curriculum); the model's
        constants that follow the masses are computed again (skillmimic.model.set_ball_mass)."""
        M.set_ball_mass(self.model, mass)
        self._model_changed()

    def _model_changed(self) -> None:
        """A backend that holds its own copy of the model copies skillmimic.model.BALL_MASS_FIELDS here."""

    def _bind_views(self) -> None:
        """Public views of the raw tensors; call once the backend has made them."""
        b = slice(1, M.NUM_BODIES + 1)
        self.body_pos_w = self._xpos[:, b]
        self.body_quat_w = self._xquat[:, b]
        self.ball_pos_w = self._xpos[:, M.BALL_BODY]
        self.ball_quat_w = self._xquat[:, M.BALL_BODY]
        self.ball_lin_vel_w = self.qvel[:, self.spec.ball_qvel.start : self.spec.ball_qvel.start + 3]
        self.ball_force_w = self._xfrc[:, M.BALL_BODY, :3]

    # --- the interface -------------------------------------------------------------------------------------
    def step(self) -> None:
        """Advance every world by one control step with the current ctrl."""
        self._physics_step()
        self._after_physics()

    def reset(self, env_ids: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Set worlds env_ids (B,) to states qpos (B, nq), qvel (B, nv), with no Python loop over worlds.

        Clears their `unstable` flag and solver warm start and recomputes poses and velocities. Collision
        detection is left to their next step (it is the costly part, and training needs contacts only after a
        step): until then their contact flags read False. Call `forward()` after `reset` for exact ones.
        """
        env_ids = env_ids.to(self.device)
        self.qpos[env_ids] = qpos.to(self.device, self.qpos.dtype)
        self.qvel[env_ids] = qvel.to(self.device, self.qvel.dtype)
        self._qacc_warmstart[env_ids] = 0.0
        self.unstable[env_ids] = False
        self._forward(collide=False)
        self._derive(contacts=False)  # the contact list is unchanged: other worlds keep their flags
        for flags in (self.body_ball_contact, self.body_floor_contact, self.ball_floor_contact,
                      self.hand_ball_contact):
            flags[env_ids] = False

    def forward(self) -> None:
        """Recompute every derived quantity, contacts included, after writing qpos / qvel directly."""
        self._forward(collide=True)
        self._derive()

    _FLAGS = ("body_ball_contact", "body_floor_contact", "ball_floor_contact", "hand_ball_contact", "unstable")

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything that decides the next steps (state, targets, solver warm start) and the flags read before
        the next step (contacts, which a reset leaves False until then; unstable), as CPU tensors."""
        state = {"qpos": self.qpos.cpu().clone(), "qvel": self.qvel.cpu().clone(), "ctrl": self.ctrl.cpu().clone(),
                 "qacc_warmstart": self._qacc_warmstart.cpu().clone()}
        state.update({name: getattr(self, name).cpu().clone() for name in self._FLAGS})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore a state_dict() of a simulator with the same number of worlds."""
        if state["qpos"].shape != self.qpos.shape:
            raise ValueError(f"saved simulator state has shape {tuple(state['qpos'].shape)}, "
                             f"this simulator {tuple(self.qpos.shape)}")
        self.qpos.copy_(state["qpos"])
        self.qvel.copy_(state["qvel"])
        self.ctrl.copy_(state["ctrl"])
        self._qacc_warmstart.copy_(state["qacc_warmstart"])
        self.unstable.zero_()
        self.forward()
        for name in self._FLAGS:  # as they were, where the state holds them
            if name in state:
                getattr(self, name).copy_(state[name])

    def _after_physics(self) -> None:
        self._check_and_update()

    def _derive(self, contacts: bool = True) -> None:
        self._update_derived(contacts)

    # --- shared machinery ----------------------------------------------------------------------------------
    def _check_and_update(self) -> None:
        bad = ~(torch.isfinite(self.qpos).all(1) & torch.isfinite(self.qvel).all(1))
        bad |= self.qvel.abs().amax(1).nan_to_num(0.0) > self.cfg.max_speed
        bad |= self._backend_bad()
        self.unstable.copy_(bad)
        # Put blown-up worlds in a safe state (no sync: masked writes over all worlds).
        m = bad[:, None]
        self.qpos.copy_(torch.where(m, self._safe_qpos, self.qpos))
        self.qvel.masked_fill_(m, 0.0)
        self._qacc_warmstart.masked_fill_(m, 0.0)
        self._xpos.copy_(torch.where(m[:, :, None], self._safe_xpos, self._xpos))
        self._xquat.copy_(torch.where(m[:, :, None], self._safe_xquat, self._xquat))
        self._cvel.masked_fill_(m[:, :, None], 0.0)
        self._update_derived()

    def _backend_bad(self) -> torch.Tensor:
        return torch.zeros_like(self.unstable)

    def _update_derived(self, contacts: bool = True) -> None:
        b = slice(1, M.NUM_BODIES + 1)
        ang, lin = self._cvel[:, b, :3], self._cvel[:, b, 3:]
        # cvel is the spatial velocity at the root subtree's centre of mass: v(p) = v_c + w x (p - c).
        com = self._subtree_com[:, 1:2]
        self.body_ang_vel_w.copy_(ang)
        self.body_lin_vel_w.copy_(lin + torch.cross(ang, self._xpos[:, b] - com, dim=-1))
        ball_w_local = self.qvel[:, self.spec.ball_qvel.start + 3 : self.spec.ball_qvel.stop]
        self.ball_ang_vel_w.copy_(rotations.quat_rotate(self.ball_quat_w, ball_w_local))
        if contacts:
            self._update_contact_flags()

    def _update_contact_flags(self) -> None:
        pair, valid, world = self._contacts()
        touch_ball, touch_floor = contact_flags(pair, valid, world, self._geom_class, self.num_worlds)
        ok = ~self.unstable[:, None]
        self.body_ball_contact.copy_(touch_ball[:, : M.NUM_BODIES] & ok)
        self.body_floor_contact.copy_(touch_floor[:, : M.NUM_BODIES] & ok)
        self.ball_floor_contact.copy_(touch_floor[:, BALL_CLASS] & ~self.unstable)
        self.hand_ball_contact[:, 0] = self.body_ball_contact[:, self._left].any(1)
        self.hand_ball_contact[:, 1] = self.body_ball_contact[:, self._right].any(1)


class WarpSim(Simulator):
    """MuJoCo Warp: all worlds in one batch on a GPU (or on Warp's CPU device, for tests)."""

    backend = "mujoco_warp"

    def __init__(self, cfg: SimConfig, num_worlds: int, device: torch.device):
        import warp as wp

        wp.config.log_level = wp.LOG_WARNING  # no banner, no module-load lines; warnings still show
        import mujoco_warp as mjw

        self._wp, self._mjw = wp, mjw
        wp.init()
        mjm = load_configured_model(cfg)
        super().__init__(cfg, mjm, num_worlds, device)
        self._wp_device = "cpu" if device.type == "cpu" else f"cuda:{device.index or 0}"
        mjd = mujoco.MjData(mjm)
        mujoco.mj_forward(mjm, mjd)
        with wp.ScopedDevice(self._wp_device):
            self._m = mjw.put_model(mjm)
            # Hitting the solver's iteration limit is normal at this step size; keep the warnings that matter
            # (contact and constraint buffers too small).
            self._m.opt.warn_overflow &= ~int(mjw.OverflowType.ITERATIONS | mjw.OverflowType.LS_ITERATIONS)
            self._d = mjw.put_data(mjm, mjd, nworld=num_worlds, nconmax=cfg.nconmax, njmax=cfg.njmax)
            if device.type == "cuda":
                # Torch and Warp share one stream, so their work is ordered without extra synchronisation.
                torch.cuda.set_device(device)
                torch.cuda.set_stream(wp.stream_to_torch(wp.get_stream(self._wp_device)))
        d = self._d
        self.qpos, self.qvel, self.ctrl = wp.to_torch(d.qpos), wp.to_torch(d.qvel), wp.to_torch(d.ctrl)
        self._xpos, self._xquat = wp.to_torch(d.xpos), wp.to_torch(d.xquat)
        self._cvel, self._subtree_com = wp.to_torch(d.cvel), wp.to_torch(d.subtree_com)
        self._qacc_warmstart = wp.to_torch(d.qacc_warmstart)
        self._xfrc = wp.to_torch(d.xfrc_applied)
        self._con_geom, self._con_world = wp.to_torch(d.contact.geom), wp.to_torch(d.contact.worldid)
        self._nacon = wp.to_torch(d.nacon)
        # Per-world overflow bits, which MuJoCo Warp ORs in during a step and never clears by itself. Constraint rows
        # beyond njmax are dropped from that world alone: it is flagged unstable. A full contact pool sets its bit
        # in every world and drops contacts of any of them, so it stays a warning (size nconmax instead).
        self._overflow = wp.to_torch(d.overflow)
        self._overflow_mask = int(mjw.OverflowType.NEFC | mjw.OverflowType.NJMAX_NNZ)
        self._slots = torch.arange(self._con_geom.shape[0], device=device)
        self._bind_views()
        self._step_graph = self._post_graph = None
        self._derived_graphs: dict[bool, torch.cuda.CUDAGraph] = {}
        self._forward_graphs: dict[bool, object] = {}
        if device.type == "cuda" and cfg.cuda_graph:
            self._run(self._physics_kernels)  # compile and load modules before capture
            self._step_graph = self._capture(self._physics_kernels)
            self._forward_graphs = {c: self._capture(lambda c=c: self._forward_kernels(c)) for c in (False, True)}
            # The torch bookkeeping after a step (flags, velocities, contacts) is many small kernels over fixed
            # shapes: replay it as torch CUDA graphs too, after a few eager runs (lazy initialisation stays outside).
            for _ in range(3):
                self._check_and_update()
            self._post_graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._post_graph):
                self._check_and_update()
            for contacts in (False, True):
                self._derived_graphs[contacts] = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self._derived_graphs[contacts]):
                    self._update_derived(contacts)
        self.reset(torch.arange(self.num_worlds, device=device), self._safe_qpos.expand(self.num_worlds, -1),
                   torch.zeros_like(self.qvel))
        self.forward()

    def _backend_bad(self) -> torch.Tensor:
        bad = (self._overflow & self._overflow_mask) != 0
        self._overflow.zero_()
        return bad

    def _model_changed(self) -> None:
        # In place, so that the captured graphs read the new values.
        for name in M.BALL_MASS_FIELDS:
            dst = self._wp.to_torch(getattr(self._m, name))  # (1 or N, n, ...)
            src = torch.as_tensor(getattr(self.model, name), dtype=dst.dtype, device=dst.device)
            dst.copy_(src.expand_as(dst))

    def _physics_kernels(self) -> None:
        for _ in range(self.cfg.substeps):
            self._mjw.step(self._m, self._d)
        self._forward_kernels()

    def _forward_kernels(self, collide: bool = True) -> None:
        mjw, m, d = self._mjw, self._m, self._d
        mjw.kinematics(m, d)
        mjw.com_pos(m, d)
        mjw.com_vel(m, d)
        if collide:
            mjw.collision(m, d)

    def _run(self, fn) -> None:
        with self._wp.ScopedDevice(self._wp_device):
            fn()

    def _capture(self, fn):
        with self._wp.ScopedDevice(self._wp_device):
            with self._wp.ScopedCapture() as capture:
                fn()
        return capture.graph

    def _physics_step(self) -> None:
        if self._step_graph is not None:
            self._wp.capture_launch(self._step_graph)
        else:
            self._run(self._physics_kernels)

    def _after_physics(self) -> None:
        if self._post_graph is not None:
            self._post_graph.replay()
        else:
            self._check_and_update()

    def _derive(self, contacts: bool = True) -> None:
        if self._derived_graphs:
            self._derived_graphs[contacts].replay()
        else:
            self._update_derived(contacts)

    def _forward(self, collide: bool) -> None:
        if self._forward_graphs:
            self._wp.capture_launch(self._forward_graphs[collide])
        else:
            self._run(lambda: self._forward_kernels(collide))

    def _contacts(self):
        valid = self._slots < self._nacon.clamp(max=self._con_geom.shape[0])
        return self._con_geom, valid, self._con_world


class MujocoSim(Simulator):
    """Plain MuJoCo on the CPU: one MjData per world, stepped in a loop. For laptops, viewing and tests."""

    backend = "mujoco"

    def __init__(self, cfg: SimConfig, num_worlds: int, device: torch.device):
        if device.type != "cpu":
            raise ValueError(f"the 'mujoco' backend runs on the CPU; got device {device}")
        mjm = load_configured_model(cfg)
        super().__init__(cfg, mjm, num_worlds, device)
        N = num_worlds
        self.datas = [mujoco.MjData(mjm) for _ in range(N)]
        z = lambda *s: torch.zeros(N, *s, dtype=torch.float32)  # noqa: E731
        self.qpos, self.qvel, self.ctrl = self._safe_qpos.repeat(N, 1), z(mjm.nv), z(mjm.nu)
        self._xpos, self._xquat = z(mjm.nbody, 3), z(mjm.nbody, 4)
        self._cvel, self._subtree_com = z(mjm.nbody, 6), z(mjm.nbody, 3)
        self._qacc_warmstart = z(mjm.nv)
        self._xfrc = z(mjm.nbody, 6)
        self._warn = [mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                      mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_CONTACTFULL,
                      mujoco.mjtWarning.mjWARN_CNSTRFULL]
        self._bad = torch.zeros(N, dtype=torch.bool)
        self._bind_views()
        self.forward()

    def _sync_in(self, i: int, d: mujoco.MjData) -> None:
        d.qpos[:] = self.qpos[i].numpy()
        d.qvel[:] = self.qvel[i].numpy()
        d.ctrl[:] = self.ctrl[i].numpy()
        d.qacc_warmstart[:] = self._qacc_warmstart[i].numpy()
        d.xfrc_applied[:] = self._xfrc[i].numpy()

    def _sync_out(self, i: int, d: mujoco.MjData) -> None:
        self.qpos[i] = torch.from_numpy(d.qpos)
        self.qvel[i] = torch.from_numpy(d.qvel)
        self._qacc_warmstart[i] = torch.from_numpy(d.qacc_warmstart)
        self._xpos[i] = torch.from_numpy(d.xpos)
        self._xquat[i] = torch.from_numpy(d.xquat)
        self._cvel[i] = torch.from_numpy(d.cvel)
        self._subtree_com[i] = torch.from_numpy(d.subtree_com)

    def _run_worlds(self, substeps: int, collide: bool = True) -> None:
        m = self.model
        pairs, worlds = [], []
        for i, d in enumerate(self.datas):
            self._sync_in(i, d)
            before = sum(d.warning[w].number for w in self._warn)
            for _ in range(substeps):
                mujoco.mj_step(m, d)
            # Poses and velocities follow from the state as stored (float32), so that a state restored from a
            # checkpoint gives them to the bit.
            d.qpos[:] = d.qpos.astype(np.float32)
            d.qvel[:] = d.qvel.astype(np.float32)
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            mujoco.mj_comVel(m, d)
            if collide:
                mujoco.mj_collision(m, d)
            # MuJoCo resets a world whose state went bad, or drops what does not fit its arena, and counts a
            # warning; report it as unstable.
            self._bad[i] = sum(d.warning[w].number for w in self._warn) > before
            self._sync_out(i, d)
            pairs.append(d.contact.geom[: d.ncon])
            worlds.append(np.full(d.ncon, i, dtype=np.int32))
        geom = torch.from_numpy(np.concatenate(pairs).astype(np.int32)).reshape(-1, 2)
        self._con = (geom, torch.ones(geom.shape[0], dtype=torch.bool), torch.from_numpy(np.concatenate(worlds)))

    def _physics_step(self) -> None:
        self._run_worlds(self.cfg.substeps)

    def _forward(self, collide: bool) -> None:
        self._run_worlds(0, collide)
        self._bad.zero_()

    def _backend_bad(self) -> torch.Tensor:
        return self._bad.clone()

    def _contacts(self):
        return self._con


def make_sim(cfg: SimConfig, num_worlds: int = 1, device: str | torch.device = "auto") -> Simulator:
    """Build the simulator that cfg asks for, num_worlds independent worlds on `device` ('cuda', 'cuda:N', 'cpu',
    or 'auto': a GPU when torch sees one; see SimConfig.backend)."""
    device = resolve_device(str(device))
    backend = cfg.backend
    if backend == "auto":
        backend = "mujoco_warp" if device.type == "cuda" else "mujoco"
    if backend == "mujoco_warp":
        return WarpSim(cfg, num_worlds, device)
    if backend == "mujoco":
        return MujocoSim(cfg, num_worlds, device)
    raise ValueError(f"unknown simulator backend {cfg.backend!r}; choose 'mujoco_warp', 'mujoco' or 'auto'")
