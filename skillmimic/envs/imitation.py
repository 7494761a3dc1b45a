"""The HOI imitation environment: N humanoids, each following a reference clip of BallPlay-M.

Each environment plays one clip. It starts at a random frame of a random clip (reference-state init), sampled
class-balanced: a skill label uniformly among those loaded (or as `label_sampling` weighs them), then a clip of
that label, then a frame. The policy sees its own state, the ball and the skill condition (`envs/observations.py`:
no reference frame), and acts with PD targets for all the model's hinges (156 with the full hand; `EnvConfig.hand`)
at 60 Hz (2 physics steps each): target = action_scale * action.

The reward is the HOI imitation reward of `skillmimic.rewards` against the clip's next frame.

An episode ends
- early (terminated), when the humanoid falls: a body other than the feet and the hands touches the floor
  (the data never puts any other body there), or its bodies drift from the demonstration by more than
  `fall_distance` on average; when the ball is farther than `ball_distance` from the reference's (off by
  default); when the reference's hand-ball contact has been missing for more than `contact_patience` steps
  in a row (off by default; InterMimic's rule); also when the simulator flags the world as unstable;
- on time (truncated), at the clip's last frame (or `steps_after_clip` steps after it) or after
  `max_episode_steps`.

After the clip's last frame (with `steps_after_clip` > 0) the reference stays at that frame and only the body
terms score: the evaluation plays 300 steps from a clip's start and asks the humanoid to be standing at the end,
long after the layup's 161 frames, so training has to reach past the clip. The clips of the labels in `loops`
(off by default) have no last frame: past it the reference goes on from an earlier frame of the clip like the last,
laid onto it, and every term scores until `max_episode_steps` (envs/loops.py; a dribble is tested for 300 steps).

Starts are uniform over a label's frames, or (`adaptive_starts`) weighted towards the segments of the clips
whose episodes fall, after SkillMimic-V2's adaptive sampling: per segment of `adaptive_segment` frames a decayed
count of episodes started there and of those that fell; a label's start is drawn with probability
`adaptive_floor / frames` uniform plus `(1 - adaptive_floor)` in proportion to each frame's segment fall rate.
A share of the starts drawn (`ball_noise`, off by default) has the ball's position and velocity perturbed, and a
share (`switch_starts`, off by default) starts in the drawn frame's state with another skill's label and follows
that skill's clip from its frame nearest in pose, laid onto the start (envs/switch_starts.py). With
`label_sampling` (uniform per episode by default) the labels are drawn so that they share the samples equally, or
by how often their episodes fall, from decayed per-label counts of the episodes' ends, falls and lengths
(envs/label_sampling.py).

With `history` (off by default) the policy also observes its own state and the ball at its last K control steps
(envs/history.py), a start filling them with its first state.

`reference_obs()` gives what a privileged critic sees of the reference (envs/reference_obs.py; train_llc.py
--critic-reference), computed when asked from the state the environment keeps: never the policy's observation.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from skillmimic import model as M
from skillmimic import rewards as R
from skillmimic import skills
from skillmimic.envs.assist import AssistConfig, BallAssist, MassCurriculum, assist_force
from skillmimic.envs.ball_noise import BallNoise, perturb_ball
from skillmimic.envs.common import body_on_floor, build_sim, own_obs, restart_ended
from skillmimic.envs.history import History, HistoryBuffer
from skillmimic.envs.label_sampling import LabelCounts, LabelSampling
from skillmimic.envs.loops import LoopBlend, Loops, LoopTable, follow
from skillmimic.envs.observations import OBS_DIM, humanoid_ball_obs, skill_obs_dim
from skillmimic.envs.reference_obs import clip_phase, reference_obs
from skillmimic.envs.switch_starts import Alignment, SwitchStarts, nearest_frames, pose_features
from skillmimic.errors import UserError
from skillmimic.motion import MotionSet
from skillmimic.sim import Backend


@dataclasses.dataclass
class EnvConfig:
    backend: Backend = "auto"
    """Simulator backend: 'mujoco_warp', 'mujoco' or 'auto' (see SimConfig)."""
    action_scale: float = math.pi / 2
    """PD target = action_scale * action (radians); actions are clipped to [-action_clip, action_clip]."""
    action_clip: float = 2.0
    """Largest action magnitude taken."""
    fall_distance: float = 0.5
    """End an episode when the mean body-position error to the reference exceeds this (m)."""
    ball_distance: float = math.inf
    """End an episode when the ball is farther than this from the reference's ball (m), on the clip's frames
    (not past its end); inf: never. With the interaction-graph weight 20, a ball 0.5 m off leaves the reward
    near 0 for the rest of the episode, so its steps teach nothing."""
    max_episode_steps: int = 600
    """Longest episode (control steps at 60 Hz), whatever the clip's length."""
    end_at_clip_end: bool = True
    """Truncate an episode at its clip's last frame (off for evaluation, where the policy plays on alone)."""
    auto_reset: bool = True
    """Restart finished episodes inside step() (off for evaluation, which keeps each episode's end)."""
    steps_after_clip: int = 0
    """Control steps an episode goes on after its clip's last frame, the reference held at that frame and only
    the body terms (position, rotation, joint velocity) scored; 0 ends it at the clip's end."""
    adaptive_starts: bool = False
    """Start episodes more often in the clip segments whose episodes fall (see the module docstring)."""
    adaptive_floor: float = 0.2
    """Share of the start probability spread uniformly over a label's frames when `adaptive_starts` is on."""
    adaptive_segment: int = 10
    """Frames per clip segment of the adaptive start statistics."""
    adaptive_decay: float = 0.999
    """Per control step decay of the segment statistics (half-life about 700 steps), and of the label statistics of
    `label_sampling`."""
    label_sampling: LabelSampling = dataclasses.field(default_factory=LabelSampling)
    """How a training episode's skill label is drawn: uniformly per episode (the default), or so that the labels
    share the samples equally, by how often their episodes fall, or in given shares (envs/label_sampling.py); never
    on the starts given to the environment (the evaluation's, play.py's, the warm start's)."""
    self_collision: bool = False
    """Let the humanoid's bodies collide with each other."""
    hand: M.Hand = "full"
    """The hand's articulation: 'full' (156 hinges), 'anatomical' (108), 'hinge1' (100) or 'rigid' (66); see
    skillmimic.model. The motion set must be loaded for the same hand."""
    physics: M.Physics = dataclasses.field(default_factory=M.Physics)
    """The ball's mass, the palm, the hands' margin, the wrists' gains and the ball's bounce and roll on the floor
    (skillmimic.model.Physics); a policy records them."""
    ball_starts: bool = False
    """Before the first hand contact of each clip listed in a ball_starts.json beside it (the pickup's moving-ball
    clips: tools/fit_ball_starts.py), follow the ball simulated in `physics` from a fitted start instead of the
    recorded one, which the model's ball leaves 0.5 m behind before any hand touches it (skillmimic.ball_starts,
    MotionSet's ball_starts); off by default. The motion set must be loaded with it (load_motions); a policy
    records it, and the evaluation and play.py follow the reference it was trained on."""
    assist: AssistConfig = dataclasses.field(default_factory=AssistConfig)
    """The ball curriculum: a guiding force on the ball towards its reference (envs/assist.py); off by default
    and always off in the evaluation."""
    mass_curriculum: MassCurriculum = dataclasses.field(default_factory=MassCurriculum)
    """A heavier ball at the start that becomes the physics' ball over the run (envs/assist.py); off by default."""
    ball_noise: BallNoise = dataclasses.field(default_factory=BallNoise)
    """Training starts with the ball moved and pushed off the data's (envs/ball_noise.py); off by default, and
    never on the starts given to the environment (the evaluation's, play.py's)."""
    switch_starts: SwitchStarts = dataclasses.field(default_factory=SwitchStarts)
    """Training starts in one skill's state with another skill's label, so that the policy practises the switches
    play.py and the task controllers make (envs/switch_starts.py); off by default, and never on the starts given to
    the environment (the evaluation's, play.py's, the warm start's)."""
    history: History = dataclasses.field(default_factory=History)
    """The policy's own past observations given with the present one (envs/history.py); off by default. A policy
    records it, and the evaluation, play.py and the task environments rebuild its observation from the file."""
    loops: Loops = dataclasses.field(default_factory=Loops)
    """Clips of these labels loop past their last frame: the reference goes on from the clip's frame nearest the
    last in pose and ball, laid onto the last one, and every term scores until `max_episode_steps` (envs/loops.py:
    the evaluation asks a dribble to go on for 300 steps); off by default."""
    contact_patience: int = 0
    """End an episode when the reference's hand-ball contact has been missing from the simulation for more than
    this many control steps in a row, on the clip's frames (InterMimic uses 10); 0: never."""
    reward: R.RewardConfig = dataclasses.field(default_factory=R.RewardConfig)
    """Weights of the HOI imitation reward."""

    def __post_init__(self):
        c = self.mass_curriculum  # a user's flags: refused when parsed, before anything is built
        if c.start < 0 or c.steps < 1 or c.levels < 1:
            raise UserError(f"--env.mass-curriculum: start {c.start} must be 0 (off) or a mass in kg, steps {c.steps} "
                            f"and levels {c.levels} at least 1")
        if c.first_step < 0:
            raise UserError(f"--env.mass-curriculum.first-step {c.first_step}: must be 0 or more (the control step "
                            "of the curriculum a continued run starts at)")
        self.ball_noise.check()
        self.label_sampling.check()
        self.switch_starts.check()
        self.history.check()
        self.loops.check()


def load_motions(source, cfg: EnvConfig, device: str | torch.device = "cpu") -> MotionSet:
    """The clips of `source` (a file, a folder or a list) as an environment of `cfg` reads them: in its hand's
    layout, with its fitted ball starts simulated in its physics when cfg.ball_starts is on."""
    return MotionSet(source, device=device, hand=cfg.hand, ball_starts=cfg.ball_starts, physics=cfg.physics)


class ImitationEnv:
    """Batched imitation environment of num_envs worlds on the simulator. Tensors live on `device` ('cuda',
    'cuda:N', 'cpu' or 'auto', where the motions must be too), batch dimension first.

    obs (num_envs, num_obs), num_obs = skill_obs_dim(cfg.history.steps) (SKILL_OBS_DIM with no history); actions
    (num_envs, num_actions) in roughly [-1, 1], one per hinge of the model (`spec`, the hand's ModelSpec).
    """

    def __init__(self, cfg: EnvConfig, motions: MotionSet, num_envs: int, device: str | torch.device = "auto",
                 seed: int = 0):
        self.cfg = cfg
        if motions.ball_starts != cfg.ball_starts or (cfg.ball_starts and motions.physics != cfg.physics):
            raise ValueError(f"the motion set's ball starts ({motions.ball_starts}, in {motions.physics}) are not the "
                             f"environment's ({cfg.ball_starts}, in {cfg.physics}): load it with load_motions")
        skills.check_labels(motions.labels)  # before the simulator is built (on a GPU that takes a while)
        self.sim = build_sim(num_envs, cfg.backend, device, cfg.self_collision, cfg.hand, motions, cfg.physics)
        self.spec = self.sim.spec
        self.num_obs, self.num_actions = skill_obs_dim(cfg.history.steps), self.spec.num_dofs
        self.device = self.sim.device
        self.num_envs = num_envs
        self.motions = motions
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self._w = R.weights(cfg.reward)
        self._reward_fn, self._obs_fn = R.hoi_reward, humanoid_ball_obs  # compile() swaps in fused forms
        dev = self.device
        self.hand_mask = M.body_mask(M.LEFT_HAND + M.RIGHT_HAND, dev)
        self.floor_allowed = M.body_mask(M.FLOOR_BODIES, dev)
        # The body tree (the root is its own parent) and the bodies that have hinges in this model (and the root):
        # the rotations the reward's 'components' form compares.
        parent = self.sim.model.body_parentid[1 : M.NUM_BODIES + 1] - 1
        self.parents = torch.as_tensor(parent, dtype=torch.long, device=dev).clamp(min=0)
        moved = {h.rsplit("_", 1)[0] for h in self.spec.hinges}
        self.rot_bodies = torch.tensor([i == 0 or n in moved for i, n in enumerate(M.BODY_NAMES)], device=dev)
        self.assist = BallAssist(cfg.assist, num_envs, dev)
        self.mass_steps = 0  # control steps played: the mass curriculum is at its first_step + this
        self._follow_mass_curriculum()
        # Class-balanced sampling: a label, then one of its clips. clips_of[l, :count[l]] are label l's clips.
        self.skill_labels = torch.unique(motions.labels)  # (L,)
        per = [torch.nonzero(motions.labels == lab).flatten() for lab in self.skill_labels]
        self.clip_count = torch.tensor([len(p) for p in per], device=dev)
        self.clips_of = torch.zeros(len(per), max(len(p) for p in per), dtype=torch.long, device=dev)
        for i, p in enumerate(per):
            self.clips_of[i, : len(p)] = p
        self.motion_label = torch.searchsorted(self.skill_labels, motions.labels)  # (num_motions,) index into labels
        self.start_label = torch.zeros(num_envs, dtype=torch.long, device=dev)  # the label each episode started with
        self.label_counts = LabelCounts(len(per), dev, cfg.label_sampling.label_weights(self.skill_labels.tolist()))
        # (the statistics of label_sampling, counted when it is on, and the labels' weights of its mode 'weights')
        self.weigh_labels = cfg.label_sampling.mode != "episodes" and len(per) > 1  # no effect on one label
        n = self.num_envs
        self.motion_ids = torch.zeros(n, dtype=torch.long, device=dev)
        self.frame_ids = torch.zeros(n, dtype=torch.long, device=dev)
        self.episode_steps = torch.zeros(n, dtype=torch.long, device=dev)
        self.contact_missing = torch.zeros(n, dtype=torch.long, device=dev)  # steps in a row (contact_patience)
        self.skill = torch.zeros(n, skills.NUM_SLOTS, device=dev)
        self.history = HistoryBuffer(n, cfg.history.steps, OBS_DIM, dev)  # (n, K, OBS_DIM); nothing when K = 0
        self._init_segments()
        self._init_switches()

    def _init_segments(self) -> None:
        """Tables of the adaptive start sampling: every frame's segment, and each label's start frames."""
        dev, mo = self.device, self.motions
        seg_len = max(1, self.cfg.adaptive_segment)
        row_motion = torch.repeat_interleave(torch.arange(mo.num_motions, device=dev), mo.lengths)  # (F,)
        row_frame = torch.arange(mo.num_frames, device=dev) - mo.starts[row_motion]  # (F,)
        per_clip = (mo.lengths + seg_len - 1) // seg_len  # segments of each clip
        seg_start = torch.cumsum(per_clip, 0) - per_clip
        self.row_motion, self.row_frame = row_motion, row_frame
        self.seg_of_row = seg_start[row_motion] + row_frame // seg_len  # (F,)
        num_segments = int(per_clip.sum())
        # Decayed counts of the episodes started in each segment, and of those that fell.
        self.seg_started = torch.zeros(num_segments, device=dev)
        self.seg_fell = torch.zeros(num_segments, device=dev)
        self.start_seg = torch.zeros(self.num_envs, dtype=torch.long, device=dev)
        # Each label's start rows (every frame but its clip's last), padded with -1: (L, max rows).
        valid = row_frame < mo.lengths[row_motion] - 1
        rows_of = [torch.nonzero(valid & (mo.labels[row_motion] == lab)).flatten() for lab in self.skill_labels]
        self.label_rows = torch.full((len(rows_of), max(len(r) for r in rows_of)), -1, dtype=torch.long, device=dev)
        for i, r in enumerate(rows_of):
            self.label_rows[i, : len(r)] = r
        self.label_num_rows = torch.tensor([len(r) for r in rows_of], device=dev)

    def _init_switches(self) -> None:
        """Tables of the switch starts (EnvConfig.switch_starts), built only when they are on and the run has two
        labels or more: every row's label (an index into skill_labels) and its nearest start row of each label.
        Every world carries an alignment (the identity but during a switch episode) and whether it switched."""
        dev, mo, n = self.device, self.motions, self.num_envs
        self.switching = self.cfg.switch_starts.share > 0 and len(self.skill_labels) > 1
        self.switched = torch.zeros(n, dtype=torch.bool, device=dev)
        self.align = Alignment.identity(n, dev)
        self.loop_table = LoopTable.build(mo, self.cfg.loops, dev) if self.cfg.loops.labels else None
        self.looping = self.loop_table is not None and bool(self.loop_table.looped.any())
        self.aligned = self.switching or self.looping  # whether any world's reference may be moved
        frames = self.cfg.loops.blend_frames
        self.blend = LoopBlend.new(n, frames, dev) if self.looping and frames > 0 else None  # a loop's jump faded
        if not self.switching:
            return
        self.row_label = torch.searchsorted(self.skill_labels, mo.labels[self.row_motion])  # (F,)
        t = mo.table
        self.nearest = nearest_frames(pose_features(t.body_pos, t.body_quat, t.ball_pos), self.label_rows)  # (F, L)

    def _switch(self, env_ids: torch.Tensor, motion_ids: torch.Tensor, frame_ids: torch.Tensor,
                drawn: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Turn a share of drawn starts (motion_ids, frame_ids (B,)) into switch starts: another label b, uniform
        over the run's others, and b's start row nearest in pose, whose clip and frame are returned in their place;
        the world's alignment lays that row's root onto the drawn one's. Given starts keep their clip and the
        identity. Draws 2 B numbers from the generator when drawn, whatever switches."""
        B, dev = env_ids.shape[0], self.device
        if not drawn:
            self.switched[env_ids] = False
            self.align.turn[env_ids] = Alignment.identity(B, dev).turn
            self.align.shift[env_ids] = 0.0
            return motion_ids, frame_ids
        L = len(self.skill_labels)
        on = torch.rand(B, device=dev, generator=self.gen) < self.cfg.switch_starts.share  # (B,)
        step = torch.randint(1, L, (B,), device=dev, generator=self.gen)  # another label: a + 1 .. a + L - 1, mod L
        start = self.motions.rows(motion_ids, frame_ids)  # (B,)
        target = torch.where(on, self.nearest[start, (self.row_label[start] + step) % L], start)
        t = self.motions.table
        al = Alignment.onto(t.root_pos[target], t.root_quat[target], t.root_pos[start], t.root_quat[start])
        self.switched[env_ids] = on
        self.align.turn[env_ids] = al.turn
        self.align.shift[env_ids] = al.shift
        return self.row_motion[target], self.row_frame[target]

    def start_probabilities(self) -> torch.Tensor:
        """Per label, the probability of starting at each of its start rows (label_rows). (L, max rows), rows
        sum to 1, padding 0. A segment with no episodes yet counts as failing half the time."""
        fall_rate = (self.seg_fell + 0.5) / (self.seg_started + 1.0)  # (segments,)
        pad = self.label_rows < 0
        w = fall_rate[self.seg_of_row[self.label_rows.clamp(min=0)]].masked_fill(pad, 0.0)
        w = w / w.sum(-1, keepdim=True)
        uniform = (~pad).float() / self.label_num_rows[:, None]
        floor = self.cfg.adaptive_floor
        return floor * uniform + (1.0 - floor) * w

    # --- reference-state init -------------------------------------------------------------------------------
    def sample_starts(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n (motion id, frame id) pairs: label uniform (or as label_sampling weighs them: sample_labels), then clip
        uniform within it and frame uniform but the last, or (adaptive_starts) a start row of the label drawn by
        start_probabilities()."""
        lab = self.sample_labels(n)
        if self.cfg.adaptive_starts:
            cdf = self.start_probabilities().cumsum(-1)[lab]  # (n, max rows)
            u = torch.rand(n, 1, device=self.device, generator=self.gen) * cdf[:, -1:]
            k = torch.searchsorted(cdf, u).squeeze(1)
            k = torch.minimum(k, self.label_num_rows[lab] - 1)
            rows = self.label_rows[lab, k]
            return self.row_motion[rows], self.row_frame[rows]
        k = (torch.rand(n, device=self.device, generator=self.gen) * self.clip_count[lab]).long()
        motion_ids = self.clips_of[lab, k]
        frames = (torch.rand(n, device=self.device, generator=self.gen) * (self.motions.lengths[motion_ids] - 1))
        return motion_ids, frames.long()

    def sample_labels(self, n: int) -> torch.Tensor:
        """n label indices (into skill_labels): uniform, or by the label_sampling mode's probabilities."""
        L = len(self.skill_labels)
        if not self.weigh_labels:  # one integer per start: the random stream as it always was
            return torch.randint(0, L, (n,), device=self.device, generator=self.gen)
        cdf = self.label_counts.probabilities(self.cfg.label_sampling).cumsum(0)  # (L,)
        u = torch.rand(n, device=self.device, generator=self.gen) * cdf[-1]
        return torch.searchsorted(cdf, u, right=True).clamp(max=L - 1)

    def reset_envs(self, env_ids: torch.Tensor, motion_ids: torch.Tensor | None = None,
                   frame_ids: torch.Tensor | None = None) -> None:
        """Put env_ids at reference frames: the given ones, or random ones (class-balanced), a share of which
        with the ball perturbed (EnvConfig.ball_noise) and a share switching skills (EnvConfig.switch_starts)."""
        drawn = motion_ids is None or frame_ids is None
        if drawn:
            motion_ids, frame_ids = self.sample_starts(env_ids.shape[0])
        qpos, qvel = self.motions.state(motion_ids, frame_ids)  # (B, nq), (B, nv) the start's state
        # A switch start is filed under the row it starts in, the one the adaptive sampler drew; _count_starts
        # leaves it out of the statistics all the same (see there).
        self.start_seg[env_ids] = self.seg_of_row[self.motions.rows(motion_ids, frame_ids)]
        self.start_label[env_ids] = self.motion_label[motion_ids]
        if self.switching:  # the clip and frame followed: another label's, for a share of the drawn starts
            motion_ids, frame_ids = self._switch(env_ids, motion_ids, frame_ids, drawn)
        elif self.looping:  # a loop of the last episode moved its reference: back where the clip stands
            self.align.turn[env_ids] = Alignment.identity(env_ids.shape[0], self.device).turn
            self.align.shift[env_ids] = 0.0
        if self.blend is not None:
            self.blend.restart(env_ids)
        self.motion_ids[env_ids] = motion_ids
        self.frame_ids[env_ids] = frame_ids
        self.episode_steps[env_ids] = 0
        self.contact_missing[env_ids] = 0
        self.history.restart(env_ids)
        self.assist.start(env_ids, self.gen)
        self.skill[env_ids] = skills.one_hot(self.motions.labels[motion_ids])
        if drawn and self.cfg.ball_noise.share > 0:  # no draw when off: the random stream stays as it was
            perturb_ball(qpos, qvel, self.spec, self.cfg.ball_noise, self.gen)
        self.sim.reset(env_ids, qpos, qvel)

    def reset(self) -> torch.Tensor:
        self.reset_envs(torch.arange(self.num_envs, device=self.device))
        return self.observe()

    @torch.no_grad()
    def demonstration(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What the data would do, for a warm start by regression: the observation at every frame that has a next
        frame (the simulator put in the frame's state, contacts included) and the action whose PD targets are
        the next frame's hinge angles. -> obs (F', num_obs), actions (F', num_actions).

        Moves the simulator's worlds (in chunks of num_envs): call it before reset()."""
        mo = self.motions
        rows = torch.nonzero(self.row_frame < mo.lengths[self.row_motion] - 1).flatten()
        obs, act = [], []
        for chunk in rows.split(self.num_envs):
            ids = torch.arange(chunk.numel(), device=self.device)
            motion_ids, frame_ids = self.row_motion[chunk], self.row_frame[chunk]
            self.reset_envs(ids, motion_ids, frame_ids)
            self.sim.forward()
            obs.append(self.observe()[: chunk.numel()])
            act.append(mo.table.dof_pos[chunk + 1] / self.cfg.action_scale)
        return torch.cat(obs), torch.cat(act)

    # --- the loop -------------------------------------------------------------------------------------------
    def compile(self) -> None:
        """Score and observe through torch.compile'd forms of the reward and the observation (train_llc.py
        --compile): their elementwise pieces fused into a few kernels, where eager torch launches one per operation
        (about 880 launches a control step on the layup, results/speed/profile_kernels_h100.md). The same values to
        float rounding (tests/test_env.py). The first steps are slow while they compile."""
        self._reward_fn = torch.compile(R.hoi_reward, dynamic=False)
        self._obs_fn = torch.compile(humanoid_ball_obs, dynamic=False)

    def observe(self) -> torch.Tensor:
        """The policy's observation (N, num_obs): its own state and the ball now (OBS_DIM), those of its last K
        control steps with a history (K * OBS_DIM, oldest first; none by default), the skill condition last."""
        own = own_obs(self.sim, self._obs_fn)  # (N, OBS_DIM)
        return torch.cat((own, self.history.read(own), self.skill), dim=-1)

    def reference_obs(self) -> torch.Tensor:
        """The reference features of a privileged critic (envs/reference_obs.py) for the state now (N,
        REFERENCE_OBS_DIM): of the frame the next step leads to and scores, laid onto a switch episode's start, in
        the humanoid's heading frame. Valid after reset() and after every step(), the worlds it restarted included;
        computed only when asked (one gather of the motion table's rows), and it draws nothing from the random
        stream."""
        s = self.sim
        nxt, rows, body_pos, ball_pos, ball_vel = self._reference_ahead()
        phase = clip_phase(nxt, self.motions.lengths[self.motion_ids], self.cfg.steps_after_clip)  # (N, 2)
        return reference_obs(s.body_pos_w[:, 0], s.body_quat_w[:, 0], body_pos, ball_pos, ball_vel,
                             self.motions.table.contact[rows], phase)

    def reference(self, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The reference frame the worlds follow now (the one the last step scored), as the reward reads it: the
        clip's rows (N,) (default: the frames now), laid onto a switch start or a loop and a loop's jump faded.
        -> body positions (N, 53, 3), body orientations (N, 53, 4) wxyz, ball position and velocity (N, 3), world."""
        t = self.motions.table
        rows = self.motions.rows(self.motion_ids, self.frame_ids) if rows is None else rows
        body_pos, body_quat = t.body_pos[rows], t.body_quat[rows]  # (N, 53, 3), (N, 53, 4) world
        ball_pos, ball_vel = t.ball_pos[rows], t.ball_vel[rows]  # (N, 3) world
        if self.aligned:  # the clip laid onto where a switch episode started or onto its loop (the identity elsewhere)
            al = self.align
            body_pos, body_quat = al.point(body_pos), al.orientation(body_quat)
            ball_pos, ball_vel = al.point(ball_pos), al.vector(ball_vel)
        if self.blend is not None:
            b = self.blend
            body_pos, ball_pos, body_quat = b.apply(b.weight(b.steps), b.pos, b.rot, body_pos, ball_pos, body_quat)
        return body_pos, body_quat, ball_pos, ball_vel

    def _reference_ahead(self) -> tuple[torch.Tensor, ...]:
        """The frame the next step leads to (N,), its motion-table rows (N,) (past the clip: its last frame) and the
        reference there as that step will score it (laid onto a switch start or a loop, a loop's jump faded): body
        positions (N, 53, 3), ball position and velocity (N, 3), world. The critic's look ahead and the assist's
        target read it."""
        t = self.motions.table
        nxt, al, looped = self._next_frames()
        rows = self.motions.rows(self.motion_ids, nxt)
        body_pos, ball_pos, ball_vel = t.body_pos[rows], t.ball_pos[rows], t.ball_vel[rows]
        if self.aligned:  # as step() lays the followed clip onto the start or the loop (the identity elsewhere)
            body_pos, ball_pos, ball_vel = al.point(body_pos), al.point(ball_pos), al.vector(ball_vel)
        if self.blend is not None:  # and fades a loop's jump
            w, offset = self.blend.peek(self.loop_table, self.motion_ids, looped, self.align)
            body_pos, ball_pos, _ = self.blend.apply(w, offset, None, body_pos, ball_pos)
        return nxt, rows, body_pos, ball_pos, ball_vel

    def _next_frames(self) -> tuple[torch.Tensor, Alignment, torch.Tensor | None]:
        """The frame the next step leads to (N,), the alignment it is read through and the worlds it takes round a
        loop (N,) bool: past a looped clip's last frame, its loop's (envs/loops.py); None without loops."""
        nxt = self.frame_ids + 1
        if not self.looping:
            return nxt, self.align, None
        return follow(self.loop_table, self.motion_ids, nxt, self.motions.lengths[self.motion_ids] - 1, self.align)

    def score(self, **inputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The HOI reward of this step (skillmimic.rewards.hoi_reward's arguments by name), compiled or not."""
        return self._reward_fn(**inputs)

    def step(self, actions: torch.Tensor):
        """Apply actions (N, num_actions), advance one control step, score it, end and restart finished episodes.

        Returns obs (N, num_obs) after any restarts, reward (N,), terminated (N,) bool, truncated (N,) bool, and
        info: {"terms": {name: (N,)}, "episode_steps": (N,) lengths of the episodes that just ended}.
        """
        s, t = self.sim, self.motions.table
        last = self.motions.lengths[self.motion_ids] - 1
        self.history.push()  # the state observed last, which the actions answer
        self._follow_mass_curriculum()
        s.ctrl.copy_(self.cfg.action_scale * actions.clamp(-self.cfg.action_clip, self.cfg.action_clip))
        if self.assist.on:  # towards the frame the step leads to
            a, (nxt, _, _, target_pos, target_vel) = self.cfg.assist, self._reference_ahead()  # (N, 3) world
            factor = self.assist.env_factor(nxt <= last)
            s.ball_force_w.copy_(assist_force(s.ball_pos_w, s.ball_lin_vel_w, target_pos, target_vel,
                                              self.ball_mass, a.kp, a.kd, a.max_accel, factor))
        s.step()
        self.mass_steps += 1
        self.frame_ids += 1
        self.episode_steps += 1
        if self.looping:  # past a looped clip's last frame: on from its loop frame, laid onto the last
            frames, align, looped = follow(self.loop_table, self.motion_ids, self.frame_ids, last, self.align)
            if self.blend is not None:  # a loop's jump fades from the alignment it had
                self.blend.advance(self.loop_table, self.motion_ids, looped, self.align)
            self.align = align
            self.frame_ids.copy_(frames)
        rows = self.motions.rows(self.motion_ids, self.frame_ids)
        ref_body_pos, ref_body_quat, ref_ball_pos, ref_ball_vel = self.reference(rows)
        reward, terms = self.score(
            body_pos=s.body_pos_w, body_quat=s.body_quat_w, dof_vel=s.qvel[:, self.spec.dof_qvel],
            ball_pos=s.ball_pos_w, ball_vel=s.ball_lin_vel_w, hand_ball=s.hand_ball_contact,
            body_ball=s.body_ball_contact, body_floor=s.body_floor_contact,
            ref_body_pos=ref_body_pos, ref_body_quat=ref_body_quat, ref_dof_vel=t.dof_vel[rows],
            ref_ball_pos=ref_ball_pos, ref_ball_vel=ref_ball_vel, ref_contact=t.contact[rows],
            hand_mask=self.hand_mask, floor_allowed=self.floor_allowed, w=self._w, parents=self.parents,
            rot_bodies=self.rot_bodies, components=self.cfg.reward.form == "components",
        )
        on_clip = self.frame_ids <= last
        if self.cfg.steps_after_clip > 0:  # past the clip: hold its last frame, score the body alone
            body_only = terms["p"] * terms["r"] * terms["jv"]
            reward = torch.where(self.frame_ids > last, body_only, reward)
        drift = (s.body_pos_w - ref_body_pos).norm(dim=-1).mean(-1)
        fell = body_on_floor(s, self.floor_allowed) | (drift > self.cfg.fall_distance)
        ball_error = (s.ball_pos_w - ref_ball_pos).norm(dim=-1)
        if math.isfinite(self.cfg.ball_distance):  # the ball lost: on the clip's frames only
            fell |= (ball_error > self.cfg.ball_distance) & on_clip
        if self.cfg.contact_patience > 0:  # the reference holds the ball and the hands have not for a while
            missing = (t.contact[rows] > 0.5) & ~s.hand_ball_contact.any(-1) & on_clip
            self.contact_missing = (self.contact_missing + 1) * missing
            fell |= self.contact_missing > self.cfg.contact_patience
        terminated = fell | s.unstable
        self.assist.update(terminated, on_clip)
        reward = torch.where(s.unstable, torch.zeros_like(reward), reward)
        timeout = self.episode_steps >= self.cfg.max_episode_steps
        if self.cfg.end_at_clip_end:  # a looped clip has no end: max_episode_steps ends its episodes
            at_end = self.frame_ids >= last + self.cfg.steps_after_clip
            timeout |= at_end & ~self.loop_table.looped[self.motion_ids] if self.looping else at_end
        truncated = ~terminated & timeout
        episode_steps = self.episode_steps.clone()
        stats = {}
        if self.switching:  # how switch episodes fare against the others: the share of each that falls this step
            sw = self.switched
            stats = {"fall_rate_switched": (terminated & sw).sum() / sw.sum().clamp(min=1),
                     "fall_rate_plain": (terminated & ~sw).sum() / (~sw).sum().clamp(min=1)}
        if self.cfg.adaptive_starts:
            self._count_starts(terminated, truncated)
        if self.weigh_labels:
            stats.update(self._count_labels(terminated, truncated, episode_steps))
        if self.cfg.auto_reset:
            restart_ended(self.reset_envs, terminated, truncated)
        info = {"terms": terms, "episode_steps": episode_steps, "drift": drift,
                # (scalars) the ball error on the clip's frames, and the assist factor now
                "stats": {"ball_error": (ball_error * on_clip).sum() / on_clip.sum().clamp(min=1),
                          "assist": self.assist.factor.clone(), **stats}}
        if self.cfg.mass_curriculum.start > 0:
            info["stats"]["ball_mass"] = torch.full((), self.ball_mass, device=self.device)
        return self.observe(), reward, terminated, truncated, info

    def _follow_mass_curriculum(self) -> None:
        """Give the ball the curriculum's mass for this step, where it changed (MassCurriculum)."""
        mass = self.cfg.mass_curriculum.mass(self.cfg.physics.ball_mass, self.mass_steps)
        if mass != self.ball_mass:
            self.sim.set_ball_mass(mass)

    @property
    def ball_mass(self) -> float:
        """The ball's mass now (kg), as the simulator has it."""
        return float(self.sim.model.body_mass[M.BALL_BODY])

    def _count_starts(self, terminated: torch.Tensor, truncated: torch.Tensor) -> None:
        """Decay the segment statistics and add the episodes that ended this step to their start segments."""
        self.seg_started.mul_(self.cfg.adaptive_decay)
        self.seg_fell.mul_(self.cfg.adaptive_decay)
        ended, fell = terminated | truncated, terminated
        if self.switching:  # a switch episode's end tells how the policy switches, not how it plays the segment
            # it started in (nor the one it followed): left out, so that switches, which fall far more often while
            # they are new, do not pull the plain starts towards whichever segments they began in
            ended, fell = ended & ~self.switched, fell & ~self.switched
        self.seg_started.index_add_(0, self.start_seg, ended.float())
        self.seg_fell.index_add_(0, self.start_seg, fell.float())

    def _count_labels(self, terminated: torch.Tensor, truncated: torch.Tensor,
                      episode_steps: torch.Tensor) -> dict[str, torch.Tensor]:
        """Decay the label statistics and add the episodes that ended this step (switch episodes left out, as in
        _count_starts) to the labels they started with; -> the log's scalars of how the labels share the draws and
        this step's samples (the worlds by the skill they play)."""
        ended, fell = terminated | truncated, terminated
        if self.switching:
            ended, fell = ended & ~self.switched, fell & ~self.switched
        counts = self.label_counts
        counts.add(self.start_label, ended, fell, episode_steps, self.cfg.adaptive_decay)
        p = counts.probabilities(self.cfg.label_sampling)  # (L,) the next draws'
        playing = torch.zeros_like(p).index_add_(0, self.motion_label[self.motion_ids],
                                                 torch.ones(self.num_envs, device=self.device))  # (L,) worlds
        share = playing / self.num_envs
        return {"label_draw_min": p.min(), "label_draw_max": p.max(), "label_share_min": share.min(),
                "label_share_hardest": share[counts.fall_rate().argmax()]}

    # --- checkpoints ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue these episodes exactly: simulator, clip positions, random stream."""
        return {"sim": self.sim.state_dict(), "motion_ids": self.motion_ids.cpu().clone(),
                "frame_ids": self.frame_ids.cpu().clone(), "episode_steps": self.episode_steps.cpu().clone(),
                "skill": self.skill.cpu().clone(), "start_seg": self.start_seg.cpu().clone(),
                "start_label": self.start_label.cpu().clone(), "label_counts": self.label_counts.state_dict(),
                "seg_started": self.seg_started.cpu().clone(), "seg_fell": self.seg_fell.cpu().clone(),
                "contact_missing": self.contact_missing.cpu().clone(), "assist": self.assist.state_dict(),
                "switched": self.switched.cpu().clone(), "align_turn": self.align.turn.cpu().clone(),
                "align_shift": self.align.shift.cpu().clone(),
                "mass_steps": self.mass_steps, "generator": self.gen.get_state(),
                **({"history": self.history.state_dict()} if self.history.steps else {}),
                **({"loop_blend": {"steps": self.blend.steps.cpu().clone(), "pos": self.blend.pos.cpu().clone(),
                                   "rot": self.blend.rot.cpu().clone()}} if self.blend is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        self.sim.load_state_dict(state["sim"])
        for name in ("motion_ids", "frame_ids", "episode_steps", "skill"):
            getattr(self, name).copy_(state[name])
        for name in ("start_seg", "start_label", "seg_started", "seg_fell", "contact_missing"):
            if name in state:  # absent from earlier versions
                getattr(self, name).copy_(state[name])
        if "label_counts" in state:  # absent from earlier versions, which had no label sampling
            self.label_counts.load_state_dict(state["label_counts"])
        if "switched" in state:  # absent from earlier versions, which had no switch starts
            self.switched.copy_(state["switched"])
            self.align.turn.copy_(state["align_turn"])
            self.align.shift.copy_(state["align_shift"])
        if "assist" in state:
            self.assist.load_state_dict(state["assist"])
        if "history" in state:  # absent from earlier versions, which had none
            self.history.load_state_dict(state["history"])
        if self.blend is not None and "loop_blend" in state:  # absent from runs without loops
            b = state["loop_blend"]
            self.blend.steps.copy_(b["steps"])
            self.blend.pos.copy_(b["pos"])
            self.blend.rot.copy_(b["rot"])
        self.mass_steps = int(state.get("mass_steps", 0))
        self._follow_mass_curriculum()
        self.gen.set_state(state["generator"])
