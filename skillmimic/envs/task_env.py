"""The high-level task environment: a frozen skill policy plays the skill that the high-level action picks.

Each of N worlds holds the humanoid, the ball and a task's goal (`skillmimic.tasks`). A high-level action is an
index into the task's skills; the skill policy (low-level controller) then runs `llc_steps` control steps at
60 Hz with that skill's condition (SkillMimic's setting: 3). The observation is the humanoid's own state and the
ball (as the skill policy sees them, `envs/observations.py`) followed by the task's goal observation. A skill policy
that observes its own past (its file's history_steps, envs/history.py) is given it as in its training: the
environment keeps each world's last steps for it, a start filling them with its first state. It also keeps the
skill each world played last (`last_skill`, -1 from a start to its first control step), which a sticky high-level
policy reads besides the observation (train_hlc.py --sticky, skillmimic.sticky).

Episodes start at random frames of the clips of the task's `init_labels` (all clips if the motion set has none
of them; `start_labels`: those skills' clips instead; `first_frame`: at their first frames). An episode ends
- terminated: on success (the task's test, rewarded with its bonus) or on a fall (a body other than the feet and
  hands touches the floor, or the simulator flags the world as unstable);
- truncated: after `max_episode_steps` control steps.
Within a decision, steps after a world's end are simulated but neither rewarded nor counted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from skillmimic import model as M
from skillmimic import skills
from skillmimic.envs.common import body_on_floor, build_sim, own_obs, restart_ended
from skillmimic.checkpoint import CheckpointError
from skillmimic.envs.history import HistoryBuffer
from skillmimic.envs.observations import OBS_DIM, skill_obs_dim
from skillmimic.errors import UserError
from skillmimic.llc_link import SHIPPED_LLC, load_llc, load_task_llc
from skillmimic.motion import MotionSet
from skillmimic.policy import SkillPolicy, TaskPolicy, load_task_policy
from skillmimic.sim import Backend
from skillmimic.tasks import TASKS
from skillmimic.tasks.state import TaskState


@dataclasses.dataclass
class TaskEnvConfig:
    backend: Backend = "auto"
    """Simulator backend: 'mujoco_warp', 'mujoco' or 'auto' (see SimConfig)."""
    llc_steps: int = 3
    """Control steps (60 Hz) the skill policy runs per high-level decision."""
    max_episode_steps: int = 600
    """Longest episode, in control steps (600: 10 s)."""
    first_frame: bool = False
    """Start each episode at the first frame of its drawn clip, as the skill evaluation does, instead of a random
    frame (the same random draws either way, so one seed gives the same clips and goals)."""
    start_labels: tuple[int, ...] = ()
    """Start episodes in the clips of these skill labels instead of the task's own (e.g. 13, the dribble forward's
    alone, while the skill policy falls in the dribble left and right: results/task_diagnosis/README.md); each must
    have clips in the motion set. Empty: the task's starts, which the task evaluation always uses."""
    auto_reset: bool = True
    """Restart finished episodes inside step() (off for evaluation and viewing)."""
    self_collision: bool = False
    """Let the humanoid's bodies collide with each other."""
    hand: M.Hand | None = None
    """The hand's articulation (see skillmimic.model); None: the skill policy's. The skill policy must have been
    trained on it, and the motion set loaded for it."""


class TaskEnv:
    """Batched task environment of N = num_envs worlds on `device` (where the motions must be too).
    obs (N, OBS_DIM + task.obs_dim); actions (N,) long in [0, len(task.skills))."""

    def __init__(self, cfg: TaskEnvConfig, task_cls, task_cfg, llc: SkillPolicy, motions: MotionSet, num_envs: int,
                 device: str | torch.device = "auto", seed: int = 0):
        hand = cfg.hand or llc.hand
        spec = M.load_spec(hand)
        llc_obs = skill_obs_dim(llc.history_steps)  # with the past steps it observes
        if llc.num_obs != llc_obs or llc.num_actions != spec.num_dofs or llc.hand != hand:
            raise ValueError(f"the skill policy ({llc.hand} hand) takes {llc.num_obs} observations and gives "
                             f"{llc.num_actions} actions; this model ({hand} hand) needs "
                             f"{llc_obs} and {spec.num_dofs}")
        self.cfg = cfg
        self.sim = build_sim(num_envs, cfg.backend, device, cfg.self_collision, hand, motions, llc.physics)
        self.device = dev = self.sim.device
        self.num_envs = n = num_envs
        self.motions = motions
        self.llc = llc.to(dev)
        self.gen = torch.Generator(device=dev).manual_seed(seed)
        self.task = task_cls(task_cfg, n, dev, self.gen)
        self.num_obs = OBS_DIM + self.task.obs_dim
        self.num_actions = len(self.task.skills)
        self.skill_table = skills.one_hot(torch.tensor(self.task.skills, device=dev))  # (A, 64)
        for label in cfg.start_labels:
            if not bool((motions.labels == label).any()):
                have = " ".join(f"{lab:03d}" for lab in sorted(set(motions.labels.tolist())))
                raise UserError(f"--env.start-labels {label}: no clip of that skill in the motion set ({have})")
        starts = torch.isin(motions.labels, torch.tensor(cfg.start_labels or self.task.init_labels, device=dev))
        self.init_clips = starts.nonzero().flatten() if starts.any() else torch.arange(motions.num_motions,
                                                                                        device=dev)
        self.floor_allowed = M.body_mask(M.FLOOR_BODIES, dev)
        self.episode_steps = torch.zeros(n, dtype=torch.long, device=dev)
        # Each world's start: its clip (an index into motions) and frame, for traces (tools/scripted_task.py).
        self.start_clip = torch.zeros(n, dtype=torch.long, device=dev)
        self.start_frame = torch.zeros(n, dtype=torch.long, device=dev)
        self.llc_history = HistoryBuffer(n, llc.history_steps, OBS_DIM, dev)  # (n, K, OBS_DIM); nothing when K = 0
        self.last_skill = torch.full((n,), -1, dtype=torch.long, device=dev)  # (n,) index into task.skills; -1: none

    # --- what the worlds look like ----------------------------------------------------------------------------
    def fallen(self) -> torch.Tensor:
        """(N,) bool: a body other than the feet and hands on the floor, or an unstable world."""
        return body_on_floor(self.sim, self.floor_allowed) | self.sim.unstable

    def state(self) -> TaskState:
        s = self.sim
        return TaskState(root_pos=s.body_pos_w[:, 0], root_quat=s.body_quat_w[:, 0], root_vel=s.body_lin_vel_w[:, 0],
                         ball_pos=s.ball_pos_w, ball_vel=s.ball_lin_vel_w, hand_ball=s.hand_ball_contact.any(-1),
                         standing=~self.fallen())

    def observe(self) -> torch.Tensor:
        return torch.cat((own_obs(self.sim), self.task.observe(self.state())), dim=-1)

    # --- episodes ---------------------------------------------------------------------------------------------
    def reset_envs(self, env_ids: torch.Tensor) -> None:
        """Start env_ids at random frames of the task's clips (their first frames with cfg.first_frame), with new
        goals."""
        k = env_ids.shape[0]
        clips = self.init_clips[torch.randint(0, len(self.init_clips), (k,), device=self.device,
                                              generator=self.gen)]
        frames = (torch.rand(k, device=self.device, generator=self.gen) * (self.motions.lengths[clips] - 1)).long()
        if self.cfg.first_frame:
            frames = torch.zeros_like(frames)
        self.sim.reset(env_ids, *self.motions.state(clips, frames))
        self.start_clip[env_ids], self.start_frame[env_ids] = clips, frames
        self.episode_steps[env_ids] = 0
        self.last_skill[env_ids] = -1
        self.llc_history.restart(env_ids)
        self.task.reset(env_ids, self.state())

    def reset(self) -> torch.Tensor:
        self.reset_envs(torch.arange(self.num_envs, device=self.device))
        return self.observe()

    def control_step(self, skill_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One 60 Hz step of the skill policy playing skill_ids (N,) (indices into task.skills).
        -> task reward (N,), success (N,) bool, fell (N,) bool."""
        own = own_obs(self.sim)  # (N, OBS_DIM)
        with torch.no_grad():
            actions = self.llc(torch.cat((own, self.llc_history.read(own), self.skill_table[skill_ids]), dim=-1))
        self.llc_history.push()
        self.sim.ctrl.copy_(self.llc.action_scale * actions.clamp(-self.llc.action_clip, self.llc.action_clip))
        self.sim.step()
        self.episode_steps += 1
        self.last_skill.copy_(skill_ids)
        state = self.state()
        reward, success = self.task.step(state)
        return reward, success, ~state.standing

    def step(self, actions: torch.Tensor):
        """One high-level decision: actions (N,) long -> obs, reward (N,), terminated (N,), truncated (N,), info
        with "success" (N,) bool and "episode_steps" (N,) (control steps of the episodes that just ended)."""
        n = self.num_envs
        reward = torch.zeros(n, device=self.device)
        success = torch.zeros(n, dtype=torch.bool, device=self.device)
        fell = torch.zeros(n, dtype=torch.bool, device=self.device)
        steps = self.episode_steps.clone()
        for _ in range(self.cfg.llc_steps):
            live = ~(success | fell)
            r, s, f = self.control_step(actions)
            reward += torch.where(live, r, torch.zeros_like(r))
            steps = torch.where(live, self.episode_steps, steps)
            success |= live & s
            fell |= live & f & ~s
        terminated = success | fell
        truncated = ~terminated & (steps >= self.cfg.max_episode_steps)
        if self.cfg.auto_reset:
            restart_ended(self.reset_envs, terminated, truncated)
        info = {"success": success, "fell": fell, "episode_steps": steps}
        return self.observe(), reward, terminated, truncated, info

    # --- checkpoints ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue these episodes exactly: simulator, goals and task memory, random stream."""
        task = {k: v.cpu().clone() for k, v in vars(self.task).items() if isinstance(v, torch.Tensor)}
        return {"sim": self.sim.state_dict(), "episode_steps": self.episode_steps.cpu().clone(), "task": task,
                "generator": self.gen.get_state(), "last_skill": self.last_skill.cpu().clone(),
                **({"llc_history": self.llc_history.state_dict()} if self.llc_history.steps else {})}

    def load_state_dict(self, state: dict) -> None:
        self.sim.load_state_dict(state["sim"])
        self.episode_steps.copy_(state["episode_steps"])
        for k, v in state["task"].items():
            getattr(self.task, k).copy_(v)
        if "llc_history" in state:  # absent from earlier versions, which had none
            self.llc_history.load_state_dict(state["llc_history"])
        if "last_skill" in state:  # absent from earlier versions, whose controllers did not read it
            self.last_skill.copy_(state["last_skill"])
        self.gen.set_state(state["generator"])


def make_task_env(cfg: TaskEnvConfig, motion_dir: str | Path, num_envs: int, device: str | torch.device = "auto",
                  seed: int = 0, *, task: str | None = None, task_cfg: Any = None, llc: str | Path | None = None,
                  hlc: str | Path | None = None, hand: str | None = None) -> tuple[TaskEnv, TaskPolicy | None]:
    """The task environment that play.py --task, the task evaluation and train_hlc.py run, and its high-level
    policy, built in one way from either
    - a high-level policy file `hlc`: its task (which must be `task`, when given), its settings and its
      decision interval (cfg's llc_steps is replaced by the file's), and the skill policy it was trained on
      (llc_link.load_llc; `llc` says where it lies), checked to fit it; -> (env, the high-level policy);
    - or the task named `task` with its settings `task_cfg` (the task's config, or a dict of its fields; default:
      its defaults) and the skill policy file `llc`, which must have learned every skill the task picks
      (llc_link.load_task_llc); -> (env, None).
    Episodes start at frames of the clips in `motion_dir`, loaded for the skill policy's hand; `hand` (default:
    cfg.hand) is the hand the skill policy must be of. A file that does not fit is a one-line CheckpointError."""
    hand = hand or cfg.hand
    policy = None
    if hlc is not None:
        policy = load_task_policy(hlc, device, task=task)
        skill_policy, _ = load_llc(policy, hlc, llc, device, hand=hand)
        task, task_cfg = policy.info["task"], policy.info.get("task_config", {})
        cfg = dataclasses.replace(cfg, llc_steps=policy.info.get("llc_steps", 3))
    else:
        skill_policy = load_task_llc(task, list(TASKS[task][0].skills), llc or SHIPPED_LLC, device, hand=hand)
    task_cls, cfg_cls = TASKS[task]
    if not isinstance(task_cfg, cfg_cls):
        task_cfg = cfg_cls(**(task_cfg or {}))
    motions = MotionSet(motion_dir, device=device, hand=skill_policy.hand)
    env = TaskEnv(cfg, task_cls, task_cfg, skill_policy, motions, num_envs, device, seed=seed)
    if policy is not None and policy.num_obs != env.num_obs:
        raise CheckpointError(f"{hlc}: made for num_obs={policy.num_obs}, the {task} task has {env.num_obs}")
    return env, policy
