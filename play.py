"""Watch a skill policy play, steer it with the keyboard, replay the dataset, and record pictures and video.

    python play.py                                       # the shipped skill policy, in a window, on the CPU
    python play.py --checkpoint runs/llc/policy.pt --num-envs 3
    python play.py --play-dataset --motion-dir data/BallPlay-M/layup
    python play.py --headless --video layup.mp4 --steps 300
    python play.py --task scoring                        # the shipped high-level policy of a task
    python play.py --task scoring --checkpoint runs/hlc/policy.pt   # one trained with train_hlc.py --task scoring

Keys (configs/play/keys.yaml): Q pick up, W shot, Left / Up / Right dribble left / forward / right, E layup,
R turnaround layup; Backspace restarts, Space pauses, Escape quits. A left click on the floor sets the target
that tasks read (shown as a blue post): with --task it moves the goal (the hoop, the heading goal, the circle's
centre); right-drag turns the camera, the wheel zooms. With --task the high-level policy picks the skills, and the
pictures show a half court, the task's goal (a hoop, a post and an arrow, a circle) and follow it; --court draws
the court's lines in the other modes too. The court, the rim, its net and its board are drawn only: the ball
passes through them.

Everything runs on plain MuJoCo on the CPU. `--headless` renders offscreen (EGL) with no window. A policy runs on
the hand it was trained on (its file records it); `--hand` picks the hand of a dataset replay.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch

from skillmimic import DATA, ROOT, skills
from skillmimic.cli import check_counts, run_command
from skillmimic.envs.history import History
from skillmimic.envs.imitation import EnvConfig, ImitationEnv, load_motions
from skillmimic.envs.observations import skill_obs_dim
from skillmimic.envs.task_env import TaskEnvConfig, make_task_env
from skillmimic.errors import UserError
from skillmimic.llc_link import SHIPPED_LLC, shipped_hlc
from skillmimic.model import Hand, Physics, load_model
from skillmimic.motion import MotionSet
from skillmimic.outputs import check_file, check_folder
from skillmimic.policy import load_policy
from skillmimic.tasks import TaskName
from skillmimic.viz.court import Decoration, Marker
from skillmimic.viz.render import SceneRenderer
from skillmimic.viz.video import SIM_HZ, SUFFIXES as VIDEO_SUFFIXES, frames_due, write_video
from skillmimic.viz.viewer import SkillKeys, Window

TASK_CAMERA_DISTANCE = 8.0
"""With --task the camera starts this far back (m, the wheel zooms), to show the goal 2-8 m away."""


@dataclasses.dataclass
class Args:
    checkpoint: str = str(SHIPPED_LLC)
    """Skill policy to run (policy.pt from train_llc.py); default: the one shipped with the package. With --task:
    the high-level policy (policy.pt from train_hlc.py); default: the task's shipped one."""
    task: TaskName | None = None
    """Run a high-level policy on this task (it picks the skills; the mouse moves the goal)."""
    llc: str | None = None
    """With --task: the skill policy it drives (default: the one it was trained on, found by its sha256 and its
    path in the package; see skillmimic.llc_link); it must be that file."""
    motion_dir: str = str(DATA)
    """Clips to start from (and to replay with --play-dataset)."""
    num_envs: int = 1
    """Humanoids side by side."""
    state_init: int | None = None
    """Start at this frame of the clip (default: a random frame)."""
    play_dataset: bool = False
    """Replay the clips kinematically instead of running a policy (the ball turns green on contact labels)."""
    hand: Hand | None = None
    """The hand of a --play-dataset replay (default: full). A policy runs on the hand it was trained on; given,
    the policy must have been trained on this one."""
    save_images: str | None = None
    """Write every shown frame as a PNG into this folder."""
    video: str | None = None
    """Write the shown frames into this mp4 (or an animated GIF, looping: a name ending in .gif)."""
    fps: float = 30.0
    """Frame rate of the video and of the saved images, at most 60 (the simulation's rate): a frame is taken
    every 1/fps s of simulated time, so the video plays at the simulation's speed."""
    headless: bool = False
    """Render offscreen (EGL) with no window."""
    court: bool = False
    """Draw a half court's lines under a skill policy or a dataset replay too (--task always draws them)."""
    steps: int = 600
    """Control steps to run headless (a window runs until it is closed)."""
    width: int = 960
    """Picture width."""
    height: int = 540
    """Picture height."""
    keys: str = str(ROOT / "configs" / "play" / "keys.yaml")
    """Key-to-skill map."""
    seed: int = 0
    """Seed of the random clip and frame."""


class Player:
    """What main() drives, whatever the mode: tick() one control step, view() what to draw, decorations() the goal
    drawn with it, and what the keys and the mouse do (restart, set_skill, set_target). One subclass per mode:
    DatasetPlayer (replay the clips), SkillPlayer (a skill policy, steered by the keys), TaskPlayer (a high-level
    policy on a task); `make_player` picks it from the arguments."""

    hand: Hand  # the model that is drawn
    label: int  # the skill shown in the caption

    def __init__(self, args: Args):
        self.args = args
        self.physics = Physics()  # the policy's physical options (a palm is drawn too)
        self.paused = False
        self.target: np.ndarray | None = None  # the floor point last clicked; tasks read it

    def restart(self, env_ids: torch.Tensor | None = None) -> None:
        raise NotImplementedError

    def set_skill(self, label: int) -> None:
        self.label = label
        print(f"skill: {label:03d} {skills.skill_name(label)}", flush=True)

    def set_target(self, point: np.ndarray) -> None:
        self.target = point

    def tick(self) -> None:
        """One control step (1/60 s), unless paused."""
        if not self.paused:
            self._step()

    def _step(self) -> None:
        raise NotImplementedError

    def view(self) -> tuple[torch.Tensor, torch.Tensor, str]:
        """What to draw: qpos (W, nq) of the hand's model, ball touched (W,), and the caption."""
        raise NotImplementedError

    def decorations(self) -> list[list[Decoration]]:
        """What to draw for each world (W lists, in each world's frame): the last clicked point, in world 0."""
        worlds: list[list[Decoration]] = [[] for _ in range(self.args.num_envs)]
        if self.target is not None:
            worlds[0].append(Marker((float(self.target[0]), float(self.target[1]))))
        return worlds

    def _caption(self) -> str:
        return f"skill {self.label:03d} {skills.skill_name(self.label)}" + ("  (paused)" if self.paused else "")


def _starts(args: Args, motions: MotionSet, labels: list[int] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each world's clip (of `labels` where the motion set has any) and start frame (--state-init, or random).
    -> motion ids (W,), start frames (W,)."""
    gen = torch.Generator().manual_seed(args.seed)
    n = args.num_envs
    clips = torch.arange(motions.num_motions)
    if labels is not None:
        known = torch.isin(motions.labels.cpu(), torch.tensor(labels))
        if known.any():
            clips = known.nonzero().flatten()
    motion_ids = clips[torch.randint(0, len(clips), (n,), generator=gen)]
    last = motions.lengths[motion_ids] - 2
    if args.state_init is None:
        return motion_ids, (torch.rand(n, generator=gen) * last).long()
    return motion_ids, torch.minimum(torch.full((n,), max(args.state_init, 0)), last)


class DatasetPlayer(Player):
    """--play-dataset: the clips as recorded; a clip that ends makes way for the next clip of the set."""

    def __init__(self, args: Args):
        super().__init__(args)
        self.hand = args.hand or "full"
        self.motions = MotionSet(args.motion_dir, hand=self.hand)
        self.motion_ids, self.start_frames = _starts(args, self.motions, None)
        self.label = int(self.motions.labels[self.motion_ids[0]])
        self.frames = self.start_frames.clone()

    def restart(self, env_ids: torch.Tensor | None = None) -> None:
        self.frames = self.start_frames.clone()

    def _step(self) -> None:
        self.frames += 1
        over = self.frames >= self.motions.lengths[self.motion_ids] - 1
        # A clip that ends makes way for the next clip of the set, from its first frame.
        self.motion_ids = torch.where(over, (self.motion_ids + 1) % self.motions.num_motions, self.motion_ids)
        self.frames = torch.where(over, torch.zeros_like(self.frames), self.frames)

    def view(self) -> tuple[torch.Tensor, torch.Tensor, str]:
        qpos, _ = self.motions.state(self.motion_ids, self.frames)
        rows = self.motions.rows(self.motion_ids, self.frames)
        touched = self.motions.table.contact[rows] > 0.5
        name = self.motions.files[int(self.motion_ids[0])].name
        return qpos, touched, f"dataset: {name}  frame {int(self.frames[0])}"


class SkillPlayer(Player):
    """A skill policy playing the skill the keys pick, from frames of the clips of the skills it learned."""

    def __init__(self, args: Args):
        super().__init__(args)
        if not Path(args.checkpoint).is_file():
            raise UserError(f"{args.checkpoint}: no such checkpoint file (train one with train_llc.py, or use "
                            f"--play-dataset)")
        self.policy = load_policy(args.checkpoint, "cpu", num_obs=skill_obs_dim, hand=args.hand)
        self.hand, self.physics = self.policy.hand, self.policy.physics
        cfg = EnvConfig(backend="mujoco", fall_distance=math.inf, end_at_clip_end=False, auto_reset=False,
                        max_episode_steps=2**62, action_scale=self.policy.action_scale,
                        action_clip=self.policy.action_clip, hand=self.hand, physics=self.policy.physics,
                        ball_starts=self.policy.ball_starts, history=History(self.policy.history_steps))
        self.motions = load_motions(args.motion_dir, cfg)  # the reference it was trained on
        self.motion_ids, self.start_frames = _starts(args, self.motions, self.policy.info.get("skill_labels", []))
        self.label = int(self.motions.labels[self.motion_ids[0]])
        self.env = ImitationEnv(cfg, self.motions, args.num_envs, "cpu", seed=args.seed)
        self.restart()
        self.set_skill(self.label)

    def restart(self, env_ids: torch.Tensor | None = None) -> None:
        ids = torch.arange(self.args.num_envs) if env_ids is None else env_ids
        self.env.reset_envs(ids, self.motion_ids[ids], self.start_frames[ids])
        self.env.skill[:] = skills.one_hot(torch.tensor([self.label]))  # the restart keeps the chosen skill

    def set_skill(self, label: int) -> None:
        self.env.skill[:] = skills.one_hot(torch.tensor([label]))
        super().set_skill(label)

    def _step(self) -> None:
        _, _, terminated, _, _ = self.env.step(self.policy(self.env.observe()))
        fallen = terminated.nonzero().flatten()
        if fallen.numel():
            self.restart(fallen)

    def view(self) -> tuple[torch.Tensor, torch.Tensor, str]:
        s = self.env.sim
        return s.qpos, s.hand_ball_contact.any(-1), self._caption()


class TaskPlayer(Player):
    """--task: a high-level policy picks the skills of a skill policy; episodes start at the task's clips."""

    def __init__(self, args: Args):
        super().__init__(args)
        path = shipped_hlc(args.task) if Path(args.checkpoint) == SHIPPED_LLC else args.checkpoint
        self.task_env, self.hlc = make_task_env(TaskEnvConfig(backend="mujoco", auto_reset=False), args.motion_dir,
                                                args.num_envs, "cpu", args.seed, task=args.task, llc=args.llc,
                                                hlc=path, hand=args.hand)
        self.hand, self.physics = self.task_env.llc.hand, self.task_env.llc.physics
        self.skill_idx = torch.zeros(args.num_envs, dtype=torch.long)
        self.ticks = 0
        self.restart()
        self.label = self.task_env.task.skills[0]

    def restart(self, env_ids: torch.Tensor | None = None) -> None:
        ids = torch.arange(self.args.num_envs) if env_ids is None else env_ids
        self.task_env.reset_envs(ids)
        if self.target is not None:  # the goal stays where the mouse put it
            self.task_env.task.set_goal(self.target)
        self.ticks = 0

    def set_target(self, point: np.ndarray) -> None:
        super().set_target(point)
        self.task_env.task.set_goal(point)

    def set_skill(self, label: int) -> None:
        print("with --task the high-level policy picks the skills", flush=True)

    def _step(self) -> None:
        env = self.task_env
        if self.ticks % env.cfg.llc_steps == 0:  # a high-level decision every llc_steps control steps
            self.skill_idx = self.hlc(env.observe(), env.last_skill)  # a sticky one reads the last skills
            self.label = env.task.skills[int(self.skill_idx[0])]
        self.ticks += 1
        _, success, fell = env.control_step(self.skill_idx)
        for i in (success | fell).nonzero().flatten().tolist():
            print(f"world {i}: {'goal reached' if success[i] else 'fell'}", flush=True)
        ended = (success | fell).nonzero().flatten()
        if ended.numel():
            self.restart(ended)

    def view(self) -> tuple[torch.Tensor, torch.Tensor, str]:
        s = self.task_env.sim
        return s.qpos, s.hand_ball_contact.any(-1), f"task {self.args.task}: {self._caption()}"

    def decorations(self) -> list[list[Decoration]]:
        """Each world's goal as its task draws it (a hoop, a post, a circle)."""
        return [self.task_env.task.decorations(i) for i in range(self.args.num_envs)]


def make_player(args: Args) -> Player:
    if args.task is not None:
        return TaskPlayer(args)
    if args.play_dataset:
        return DatasetPlayer(args)
    return SkillPlayer(args)


def main(args: Args) -> None:
    check_counts(args, "num_envs", "width", "height")
    check_counts(args, "steps", minimum=0)
    if not 0 < args.fps <= SIM_HZ:  # a video of more frames than steps would repeat them
        raise UserError(f"--fps {args.fps:g}: must be above 0 and at most {SIM_HZ} (the simulation's steps a second)")
    # The output paths are checked before anything runs: a typo must not cost the simulation.
    check_file(args.video, "--video", VIDEO_SUFFIXES)
    check_folder(args.save_images, "--save-images")
    if args.headless and args.steps == 0 and (args.video or args.save_images):
        raise UserError("--steps 0: records nothing; pass --steps N (60 a second) to record")
    keys = SkillKeys.from_file(args.keys)
    player = make_player(args)
    scenes = SceneRenderer(load_model(player.hand, physics=player.physics), width=args.width, height=args.height,
                           offscreen=args.headless, court=args.court or args.task is not None)
    if args.task is not None:
        scenes.camera.distance = TASK_CAMERA_DISTANCE
    frames: list[np.ndarray] = []
    image_dir = Path(args.save_images) if args.save_images else None
    if image_dir:
        image_dir.mkdir(parents=True, exist_ok=True)

    def record(image: np.ndarray) -> None:
        if image_dir:
            imageio.imwrite(image_dir / f"{len(frames):05d}.png", image)
        frames.append(image if args.video else np.empty(0))

    def on_key(name: str) -> None:
        if name == "ESCAPE":
            quit_now.append(True)
        elif name == "BACKSPACE":
            player.restart()
        elif name == "SPACE":
            player.paused = not player.paused
        elif (label := keys.label(name)) is not None:
            player.set_skill(label)

    def on_click(point: np.ndarray) -> None:
        point = point.copy()
        point[:2] -= scenes.offsets(args.num_envs)[0]  # into world 0's frame: its goal lands under the mouse
        player.set_target(point)
        print(f"target: {point[0]:.2f} {point[1]:.2f}", flush=True)

    quit_now: list[bool] = []
    help_line = keys.help()
    if args.headless:
        for step in range(args.steps):
            player.tick()
            if len(frames) < frames_due(step, args.fps):  # a frame each 1/fps s of simulated time
                qpos, touched, caption = player.view()
                record(scenes.render(qpos, touched, text=caption, decor=player.decorations()))
    else:
        window = Window(scenes, args.width, args.height, "SkillMimic", on_key, on_click)
        step, next_time = 0, time.perf_counter()
        try:
            while not window.closed() and not quit_now:
                player.tick()
                qpos, touched, caption = player.view()
                window.draw(qpos, touched, f"{caption}\n{help_line}", decor=player.decorations())
                if (image_dir or args.video) and len(frames) < frames_due(step, args.fps):
                    record(window.pixels())
                step += 1
                next_time += 1 / 60  # real time: 60 control steps a second
                time.sleep(max(0.0, next_time - time.perf_counter()))
        finally:
            window.close()
    scenes.close()
    if args.video:
        n = write_video(frames, args.video, args.fps)
        print(f"wrote {args.video}: {n} frames at {args.fps:g} fps")
    if image_dir:
        print(f"wrote {len(frames)} images to {image_dir}")


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
