"""Evaluate a skill policy: success rate and imitation accuracy per skill, as a table and JSON.

    python -m skillmimic.evaluate --checkpoint runs/llc/policy.pt --motion-dir data/BallPlay-M/layup
    python -m skillmimic.evaluate --checkpoint runs/llc_layup/policies --json-out curve.json   # a learning curve
    python -m skillmimic.evaluate --checkpoint runs/llc/policy.pt --motion-dir data/BallPlay-M/run --per-clip

(runs/llc_layup/policies: the policies a run of `train_llc.py --config configs/llc/layup.yaml` keeps.) It prints
each policy's training as its file records it: iteration and samples, and the whole history across --init-from
(skillmimic.lineage).

Given a folder (train_llc.py --keep-policies writes one), every policy in it is evaluated in the order of
training, and the JSON holds the curve: each policy's iteration, samples and per-skill results. With --per-clip,
each skill's row is followed by one per clip (the episodes that started on it), and its JSON entry lists them.

For each skill label among the clips, `episodes` episodes start at the first frame of one of its clips (taken in
turn), with the hinge angles perturbed by Gaussian noise of `init_noise` rad so that episodes differ, and the
policy (its mean action) plays for `horizon` control steps (60 Hz) or until it falls: a body other than the feet
and hands touches the floor. The reference is not followed after its last frame; the skill condition alone
drives the humanoid. Each policy runs on the hand it was trained on (its file records it). All skills play at once,
in one environment of `episodes` worlds per skill (evaluate_skills), each as it would alone.

Success, as SkillMimic-V2's evaluation defines it:
    pickup (001)              root above 0.5 m with the ball within 0.5 m of the root for more than 60 frames
    layup (031, 034)          the ball above 1.8 m before step 300, and the humanoid still standing at the end
    shot (005, 006, 007)      the ball's peak height within 0.2 m of the reference clip's peak
    dribble (011, 012, 013)   from step 100 to the end: the ball within 1.5 m of the root, and bouncing (it touches
                              the floor in every 60-step window); the humanoid still standing
    other skills              no success test: accuracy only

Imitation accuracy, as SkillMimic defines it, over the reference's frames: the share of frames where the root
and the key bodies (head, wrists, ankles) are within 0.1 m of the reference on average, the ball within 0.2 m,
and the hand-ball contact matches the label (frames after a fall count as misses); plus the mean body-position
error (53 bodies) and ball-position error in mm; the share of episodes that fell, and the median step of
those falls; and the share of episodes that lost the ball (farther than 0.5 m from the reference's, on the
reference's frames, before any fall), and the median step of the loss: where a ball skill fails.

The reference's own success: the same test run on the clip itself as the episode reads it (its root, its ball, its
hand-ball contact label; the ball on the floor where its centre is within REFERENCE_FLOOR_M of the ball's radius;
never fallen; past the clip's last frame, that frame held), over the same horizon. `reference_success` is the share
of episodes whose clip passes, `success_where_reference_passes` the policy's success on those episodes alone: a clip
that its own motion does not pass within the horizon (a pickup that holds the ball for 60 frames only after step
300) caps every policy's success, and the second number leaves such clips out. Not for the dribbles (n/a): their
test asks for dribbling on past the clip's end, which a clip does not hold (its last frame held fails it).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Literal

import torch

from skillmimic import DATA
from skillmimic import model as M
from skillmimic import lineage, skills
from skillmimic.cli import check_counts, run_command
from skillmimic.device import resolve_device
from skillmimic.envs.history import History
from skillmimic.envs.imitation import EnvConfig, ImitationEnv, load_motions
from skillmimic.envs.loops import Loops
from skillmimic.envs.observations import skill_obs_dim
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM, seen_by
from skillmimic.errors import UserError
from skillmimic.motion import MotionSet
from skillmimic.outputs import check_file
from skillmimic.policy import load_policy
from skillmimic.sim import Backend

KEY_BODIES = (0,) + tuple(M.BODY_NAMES.index(n) for n in ("Head", "L_Wrist", "R_Wrist", "L_Ankle", "R_Ankle"))


@dataclasses.dataclass
class Args:
    checkpoint: str = "runs/llc/policy.pt"
    """An exported skill policy (policy.pt), or a folder of them (a learning curve)."""
    motion_dir: str = str(DATA / "layup")
    """Clips whose skills to evaluate (each clip's first frame is a start)."""
    episodes: int = 32
    """Episodes per skill."""
    horizon: int = 300
    """Control steps per episode."""
    init_noise: float = 0.02
    """Std of the Gaussian noise on the starting hinge angles (rad)."""
    device: str = "auto"
    """'cuda', 'cpu' or 'auto'."""
    backend: Backend = "auto"
    """Simulator backend (see SimConfig)."""
    seed: int = 0
    """Seed of the starting noise."""
    json_out: str | None = None
    """Also write the results to this JSON file."""
    per_clip: bool = False
    """Also each skill's results per clip (its episodes that started on that clip), as rows under the skill's
    and a `clips` list in its JSON entry: where a skill fails."""
    ball_starts: Literal["policy", "on", "off"] = "policy"
    """The reference ball before the first contact of the clips with fitted ball starts (EnvConfig.ball_starts):
    'policy' as the policy was trained (its file says), 'on' the fitted one, 'off' the recorded one. A teacher (its
    actor sees the reference) reads that ball: 'on' asks how a teacher trained on the recording does when the
    reference it reads is one the simulated ball can follow."""


def success(label: int, t: dict[str, torch.Tensor], ref_peak: torch.Tensor) -> torch.Tensor | None:
    """Per-episode success of skill `label` from the trajectories t (each (T, E, ...)); None: no test (a skill
    not in SUCCESS_TESTS)."""
    test = SUCCESS_TESTS.get(int(label))
    return None if test is None else test(t, ref_peak)


def holding(root: torch.Tensor, ball: torch.Tensor) -> torch.Tensor:
    """The pickup test's hold at a step: the pelvis above 0.5 m, the ball within 0.5 m of it. root, ball (..., 3)
    -> (...) bool"""
    return (root[..., 2] > 0.5) & ((ball - root).norm(dim=-1) < 0.5)


def _picked_up(t: dict[str, torch.Tensor], ref_peak: torch.Tensor) -> torch.Tensor:
    held = holding(t["root"], t["ball"]) & t["alive"]  # (T, E)
    return held.sum(0) > 60


def _laid_up(t: dict[str, torch.Tensor], ref_peak: torch.Tensor) -> torch.Tensor:
    T, alive = t["root"].shape[0], t["alive"]  # alive (T, E): not yet fallen at step k
    high = ((t["ball"][: min(T, 300), :, 2] > 1.8) & alive[: min(T, 300)]).any(0)
    return high & alive[-1]


def _shot(t: dict[str, torch.Tensor], ref_peak: torch.Tensor) -> torch.Tensor:
    height = t["ball"][..., 2]  # (T, E)
    peak = torch.where(t["alive"], height, torch.zeros_like(height)).amax(0)
    return (peak - ref_peak).abs() < 0.2


def _dribbled(t: dict[str, torch.Tensor], ref_peak: torch.Tensor) -> torch.Tensor:
    return dribbling(t, 100)


SUCCESS_TESTS = {skills.PICKUP: _picked_up, **dict.fromkeys(skills.LAYUPS, _laid_up),
                 **dict.fromkeys(skills.SHOTS, _shot), **dict.fromkeys(skills.DRIBBLES, _dribbled)}
"""Each tested skill's success test (the module docstring's table): (t, ref_peak) -> (E,) bool. The one list of
the skills that have a test: a skill not here has none (success() None, "n/a" in the tables)."""


DRIBBLE_WINDOW = 60  # control steps (1 s): a dribbled ball touches the floor in every window of this length


def dribbling(t: dict[str, torch.Tensor], start: int) -> torch.Tensor:
    """The dribble's test from step `start` to the end of the trajectories t (each (T, E, ...)): the ball within
    1.5 m of the root, bouncing (it touches the floor in every whole DRIBBLE_WINDOW-step window), and the humanoid
    still standing at the end. -> (E,) bool; with no whole window after `start`, nothing shows a dribble."""
    near = ((t["ball"][start:] - t["root"][start:]).norm(dim=-1) < 1.5).all(0)
    return near & in_every_window(t["ball_floor"], start) & t["alive"][-1]


def in_every_window(flag: torch.Tensor, start: int) -> torch.Tensor:
    """Whether flag (T, E) is true at least once in every whole DRIBBLE_WINDOW-step window from step `start`.
    -> (E,) bool; False where no whole window fits."""
    n = (flag.shape[0] - start) // DRIBBLE_WINDOW
    if n <= 0:
        return torch.zeros_like(flag[0])
    return flag[start : start + DRIBBLE_WINDOW * n].reshape(n, DRIBBLE_WINDOW, -1).any(1).all(0)


REFERENCE_FLOOR_M = 0.03  # the reference ball's centre this close to its resting height: on the floor


def reference_trajectory(ref: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference as a trajectory the success tests read (their keys, (T, E, ...)), from the reference an
    evaluation records (body (T, E, 53, 3), ball (T, E, 3), contact (T, E)): the root is body 0, the hand touches the
    ball where the contact label says so, the ball is on the floor within REFERENCE_FLOOR_M of its resting height,
    and the humanoid never falls."""
    ball = ref["ball"]
    return {"root": ref["body"][:, :, 0], "ball": ball, "hand": ref["contact"] > 0.5,
            "ball_floor": ball[..., 2] < M.BALL_RADIUS + REFERENCE_FLOOR_M,
            "alive": torch.ones(ball.shape[:2], dtype=torch.bool, device=ball.device)}


def accuracy(t: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], n_ref: torch.Tensor) -> dict[str, float]:
    """Imitation accuracy over the reference frames. t as in success(); ref (T, E, ...); n_ref (E,) frames."""
    T = t["root"].shape[0]
    in_ref = torch.arange(T, device=n_ref.device)[:, None] < n_ref[None, :]  # (T, E)
    err = (t["body"] - ref["body"]).norm(dim=-1)  # (T, E, 53)
    ball_err = (t["ball"] - ref["ball"]).norm(dim=-1)
    ok = (err[..., list(KEY_BODIES)].mean(-1) < 0.1) & (ball_err < 0.2) & (t["hand"] == (ref["contact"] > 0.5))
    ok &= t["alive"]
    m = in_ref.float()
    alive_ref = (in_ref & t["alive"]).float()
    return {
        "accuracy": float((ok.float() * m).sum() / m.sum()),
        "body_error_mm": float(1000 * (err.mean(-1) * alive_ref).sum() / alive_ref.sum().clamp(min=1)),
        "ball_error_mm": float(1000 * (ball_err * alive_ref).sum() / alive_ref.sum().clamp(min=1)),
    }


BALL_LOST_M = 0.5  # the ball this far from the reference's ball is lost (train_llc.py's ball termination)


def ball_loss(t: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], n_ref: torch.Tensor) -> dict:
    """Where the ball was lost: the share of episodes whose ball got farther than BALL_LOST_M from the reference's
    on the reference's frames while standing, and the median (1-based) step of the first such step among them
    (None if none). t, ref (T, E, ...) as in accuracy(); n_ref (E,) frames."""
    T = t["ball"].shape[0]
    in_ref = torch.arange(T, device=n_ref.device)[:, None] < n_ref[None, :]  # (T, E)
    off = ((t["ball"] - ref["ball"]).norm(dim=-1) > BALL_LOST_M) & in_ref & t["alive"]  # (T, E)
    lost = off.any(0)  # (E,)
    first = off.float().argmax(0) + 1  # (E,) the first lost step, 1-based (meaningful where lost)
    return {"ball_lost": float(lost.float().mean()),
            "ball_lost_step_median": float(first[lost].float().median()) if bool(lost.any()) else None}


def evaluation_config(policy, horizon: int, backend: Backend = "auto") -> EnvConfig:
    """The environment of an evaluation episode: the policy's hand, physics, reference ball (fitted ball starts or
    not), action scaling and history (the past steps it observes), `horizon` steps, no drift or ball termination
    (a fall alone ends it), no ball assist or ball noise (training's aids; a policy file records neither), no end
    at the clip's end, no automatic restart.
    A teacher (its actor sees the reference) reads the reference looped as it was in training (its file's "loops")."""
    loops = policy.info.get("loops") if policy.num_reference else None
    return EnvConfig(backend=backend, fall_distance=math.inf, max_episode_steps=horizon, end_at_clip_end=False,
                     auto_reset=False, action_scale=policy.action_scale, action_clip=policy.action_clip,
                     hand=policy.hand, physics=policy.physics, ball_starts=policy.ball_starts,
                     history=History(policy.history_steps),
                     loops=Loops(**{**loops, "labels": tuple(loops["labels"])}) if loops else Loops())


TRAJECTORY = ("root", "ball", "body", "hand", "ball_floor", "alive")
"""What an evaluation records after each control step (see record())."""

_READ = {
    "root": lambda s: s.body_pos_w[:, 0],  # (E, 3) the pelvis, world
    "ball": lambda s: s.ball_pos_w,  # (E, 3) world
    "body": lambda s: s.body_pos_w,  # (E, 53, 3) world
    "hand": lambda s: s.hand_ball_contact.any(-1),  # (E,) a hand touches the ball
    "ball_floor": lambda s: s.ball_floor_contact,  # (E,) the ball touches the floor
}


def record(traj: dict[str, list], sim, alive: torch.Tensor) -> None:
    """Append the state after a control step to each list of traj (keys: any of TRAJECTORY; `alive` (E,) is not
    yet fallen). torch.stack each list for the trajectories (T, E, ...) that success() and accuracy() read."""
    for key, steps in traj.items():
        steps.append(alive.clone() if key == "alive" else _READ[key](sim).clone())


def clips_in_turn(motions: MotionSet, label: int, n: int) -> torch.Tensor:
    """The clips of skill `label` for n episodes, taken in turn (in the motion set's order). -> motion ids (n,)."""
    clips = torch.nonzero(motions.labels == label).flatten()
    return clips[torch.arange(n, device=clips.device) % len(clips)]


def clip_ball_peak(motions: MotionSet, motion_ids: torch.Tensor) -> torch.Tensor:
    """The reference ball's highest point (m) in each clip of motion_ids (E,). -> (E,)"""
    return torch.stack([motions.table.ball_pos[motions.starts[m] : motions.starts[m] + motions.lengths[m], 2].max()
                        for m in motion_ids.tolist()])


def start_at_first_frames(env: ImitationEnv, motion_ids: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Start every world of env at the first frame of its clip in motion_ids (E,), with noise (E, num_dofs) added
    to the hinge angles (rad); the skill condition is the clip's label. -> obs (E, num_obs)"""
    ids = torch.arange(len(motion_ids), device=motion_ids.device)
    frame_ids = torch.zeros_like(motion_ids)
    qpos, qvel = env.motions.state(motion_ids, frame_ids)
    qpos[:, env.spec.dof_qpos] += noise
    env.reset_envs(ids, motion_ids, frame_ids)
    env.sim.reset(ids, qpos, qvel)
    return env.observe()


@torch.no_grad()
def evaluate_skills(policy, motions: MotionSet, labels: list[int], args: Args, device: torch.device) -> list[dict]:
    """Per-skill results of `policy` on the skills `labels`, all played at once in one environment of
    args.episodes worlds per skill (E L worlds, skill by skill): each skill's episodes start at its clips' first
    frames in turn, with the same hinge noise for every skill, and run args.horizon steps. The worlds do not
    interact, so each skill's episodes are those an environment of its own would play (tested on the CPU), and the
    simulator is built once instead of once per skill."""
    E, L = args.episodes, len(labels)
    env = ImitationEnv(evaluation_config(policy, args.horizon, args.backend), motions, E * L, device, seed=args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    noise = args.init_noise * torch.randn(E, env.spec.num_dofs, device=device, generator=gen)  # each skill's
    motion_ids = torch.cat([clips_in_turn(motions, label, E) for label in labels])  # (E L,)
    obs = start_at_first_frames(env, motion_ids, noise.repeat(L, 1))
    traj: dict[str, list] = {k: [] for k in TRAJECTORY}
    ref: dict[str, list] = {"body": [], "ball": [], "contact": []}
    alive = torch.ones(E * L, dtype=torch.bool, device=device)
    for _ in range(args.horizon):
        fed = seen_by(policy, env.reference_obs()) if policy.num_reference else None  # a teacher's reference
        obs, _, terminated, _, _ = env.step(policy(obs, fed))
        alive &= ~terminated
        record(traj, env.sim, alive)
        rows = motions.rows(env.motion_ids, env.frame_ids)
        ref["body"].append(motions.table.body_pos[rows])
        ref["ball"].append(motions.table.ball_pos[rows])
        ref["contact"].append(motions.table.contact[rows])
    t_all = {k: torch.stack(v) for k, v in traj.items()}  # (T, E L, ...)
    r_all = {k: torch.stack(v) for k, v in ref.items()}
    results = []
    for i, label in enumerate(labels):
        worlds = slice(i * E, (i + 1) * E)  # this skill's episodes
        t = {k: v[:, worlds] for k, v in t_all.items()}
        r = {k: v[:, worlds] for k, v in r_all.items()}
        ids = motion_ids[worlds]
        out = {"label": f"{label:03d}", "skill": skills.skill_name(label), **_results(label, t, r, motions, ids)}
        if args.per_clip:
            out["clips"] = []
            for m in torch.unique(ids).tolist():  # the clips in the motion set's order
                on = ids == m  # (E,) this clip's episodes
                t_m, r_m = {k: v[:, on] for k, v in t.items()}, {k: v[:, on] for k, v in r.items()}
                out["clips"].append({"clip": motions.files[m].name, **_results(label, t_m, r_m, motions, ids[on])})
        results.append(out)
    return results


def _results(label: int, t: dict[str, torch.Tensor], r: dict[str, torch.Tensor], motions: MotionSet,
             ids: torch.Tensor) -> dict:
    """The results of the episodes started on clips ids (E,) with trajectories t and reference r (T, E, ...)."""
    n_ref = motions.lengths[ids] - 1  # the reference exists for the clip's frames after the start
    peak = clip_ball_peak(motions, ids)
    ok = success(label, t, peak)
    ref_ok = (success(label, reference_trajectory(r), peak)  # (E,) the clip's own motion passes; None: not asked
              if int(label) not in skills.DRIBBLES else None)
    out = {"episodes": len(ids), "success": None if ok is None else float(ok.float().mean()),
           "reference_success": None if ref_ok is None else float(ref_ok.float().mean()),
           "success_where_reference_passes": None if ref_ok is None or not bool(ref_ok.any())
           else float(ok[ref_ok].float().mean()),
           "fell": float((~t["alive"][-1]).float().mean()), "fall_step_median": _median_fall_step(t["alive"])}
    out.update(accuracy(t, r, n_ref))
    out.update(ball_loss(t, r, n_ref))
    return out


def _step(step: float | None) -> str:
    return "-" if step is None else f"{step:.0f}"


def _median_fall_step(alive: torch.Tensor) -> float | None:
    """The median control step (1-based) at which the episodes that fell did so; None if none fell. alive (T, E)."""
    fell = ~alive[-1]
    if not bool(fell.any()):
        return None
    steps = (alive.sum(0) + 1)[fell]  # alive at steps 1..k, fallen from step k + 1
    return float(steps.float().median())


def evaluate_policy(path: Path, motion_sets: dict[tuple, MotionSet], args: Args,
                    device: torch.device) -> tuple[list[dict], dict]:
    """Per-skill results of one exported policy, and the policy file's info; prints a table. motion_sets holds the
    clips loaded so far, by hand (and with fitted ball starts, by their physics); those the policy's evaluation
    reads are loaded when missing."""
    # A wrong or non-finite file: one line. A teacher whose actor sees the reference motion (--actor-reference) is
    # fed it (evaluate_skills).
    policy = load_policy(path, device, num_obs=skill_obs_dim, reference=REFERENCE_OBS_DIM)
    if args.ball_starts != "policy":
        policy.ball_starts = args.ball_starts == "on"
    cfg = evaluation_config(policy, args.horizon, args.backend)
    key = (cfg.hand, cfg.ball_starts, repr(cfg.physics) if cfg.ball_starts else None)
    if key not in motion_sets:
        motion_sets[key] = load_motions(args.motion_dir, cfg, device)
    motions = motion_sets[key]
    print(f"{path}: {lineage.describe(policy.info)}"
          + (f"; fitted ball starts on {len(motions.ball_start_windows)} clips" if cfg.ball_starts else ""))
    results = evaluate_skills(policy, motions, [int(label) for label in torch.unique(motions.labels)], args, device)
    print(f"{'skill':<32} {'success':>8} {'accuracy':>9} {'body mm':>8} {'ball mm':>8} {'fell':>6} {'at step':>8} "
          f"{'ball lost':>9} {'at step':>8} {'ref. passes':>11} {'success there':>13}")
    for r in results:
        _print_row(r["label"] + " " + r["skill"], r)
        for c in r.get("clips", []):
            _print_row(f"  {Path(c['clip']).stem[:24]} ({c['episodes']})", c)
    return results, policy.info


def _print_row(name: str, r: dict) -> None:
    print(f"{name:<32} {_share(r['success']):>8} {100 * r['accuracy']:>8.1f}% {r['body_error_mm']:>8.0f} "
          f"{r['ball_error_mm']:>8.0f} {100 * r['fell']:>5.0f}% {_step(r['fall_step_median']):>8} "
          f"{100 * r['ball_lost']:>8.0f}% {_step(r['ball_lost_step_median']):>8} "
          f"{_share(r['reference_success']):>11} {_share(r['success_where_reference_passes']):>13}")


def _share(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def main(args: Args) -> list[dict]:
    """Results of the policy, or of each policy in the folder (a list of {iteration, samples, skills})."""
    check_counts(args, "episodes", "horizon")
    check_file(args.json_out, "--json-out")  # before the work, which a typo would waste
    device = resolve_device(args.device)
    motion_sets: dict[tuple, MotionSet] = {}
    path = Path(args.checkpoint)
    if not path.is_dir():
        results, _ = evaluate_policy(path, motion_sets, args, device)
        out = {"checkpoint": args.checkpoint, "args": dataclasses.asdict(args), "skills": results}
    else:
        files = sorted(path.glob("*.pt"))
        if not files:
            raise UserError(f"{path}: no policy files (*.pt) in this folder")
        results = []
        for f in files:
            per_skill, info = evaluate_policy(f, motion_sets, args, device)
            results.append({"policy": f.name, "iteration": info.get("iteration"), "samples": info.get("samples"),
                            "skills": per_skill})
        out = {"checkpoint": args.checkpoint, "args": dataclasses.asdict(args), "curve": results}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2))
    return results


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
