"""Measure skill switching: when the skill condition changes mid-motion, as play.py's keys change it, does the
humanoid stay up, and does it do the new skill? A matrix over ordered pairs of skills, printed and as JSON.

    python -m skillmimic.evaluate_switch                       # the shipped policy, the skills of play.py's keys
    python -m skillmimic.evaluate_switch --checkpoint runs/llc/policy.pt --json-out switch.json --plot switch.png
    python -m skillmimic.evaluate_switch --labels 5 13 31 --lead 60     # three skills, switching 1 s in

The skills: those of play.py's key map (--keys, configs/play/keys.yaml: 001 pickup, 005 shot, 011 / 012 / 013
dribble left / right / forward, 031 layup, 034 turnaround layup) that have clips in --motion-dir and that the policy
learned (its file lists them), or --labels. For each ordered pair (X, Y), the diagonal X -> X included (no switch:
the baseline of its row), `episodes` episodes:

1. start at the first frame of one of X's clips (taken in turn) with evaluate.py's start (its 0.02 rad noise on
   the hinges, the same draws for every pair), and let the policy (its mean action) play X for `lead` control
   steps (60 Hz: 30 steps is 0.5 s);
2. switch the skill condition to Y, as a key does in play.py, and play `after` steps (120: 2 s).

Why from the first frame and a lead, rather than from random frames of X's clips: the state at the switch is one
the policy reached itself by playing X, with its own balance, velocities and ball, which is what a play.py user
switches from; a random reference frame is the demonstration's state, which the policy may never reach
(SkillMimic-V2 trains transitions from any state near the demonstrations and would test from such frames; this
measures the policy as it plays). Each row also switches at one known phase of X (`--lead` moves it) instead of
averaging a skill's phases into one number, and its diagonal is evaluate.py's episode of X (the same clips and
start noise), `lead + after` steps long. The default lead, 0.5 s, is mid-skill: the shot's clip releases
the ball at frame 58, so at 1 s X's ball would already be flying; and the shipped policy, from the layups' first
frames, still stood in all of 16 episodes at 30 steps (CPU) but in 0 of 16 (layup) and 2 of 16 (turnaround) at 60.

Per pair, over the episodes still standing at the switch (an episode that fell while playing X tests no switch;
`standing_at_switch` is their share of all episodes):
    standing   still standing `after` steps after the switch, by evaluate.py's fall rule (a body other than the
               feet and hands on the floor);
    success    Y's success test of evaluate.py (`success`), read over the window after the switch
               (`switch_success`: what changes and why); None for a skill without a test.

The shares are of the episodes standing at the switch; None where none was. All pairs' episodes run in one batch
of worlds: on a GPU with MuJoCo Warp, on the CPU with plain MuJoCo (`--device cpu`), where fallen humanoids make a
step dear: 8 episodes per pair of the 7 skills (392 worlds, 150 steps) took 50 s to 2.2 minutes on 2 cores (two
runs), and the default 32 take about four times as long.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch

from skillmimic import DATA, ROOT, lineage, skills
from skillmimic.cli import check_counts, run_command
from skillmimic.device import resolve_device
from skillmimic.envs.imitation import ImitationEnv, load_motions
from skillmimic.envs.observations import skill_obs_dim
from skillmimic.errors import UserError
from skillmimic.evaluate import (SUCCESS_TESTS, clip_ball_peak, clips_in_turn, dribbling, evaluation_config,
                                 in_every_window, record, start_at_first_frames, success)
from skillmimic.llc_link import SHIPPED_LLC
from skillmimic.motion import MotionSet, find_clips, skill_label
from skillmimic.outputs import check_file
from skillmimic.policy import load_policy
from skillmimic.sim import Backend
from skillmimic.viz.plots import pyplot
from skillmimic.viz.viewer import SkillKeys

WINDOW = ("root", "ball", "hand", "ball_floor", "alive")
"""What is recorded after each step of the window after the switch (evaluate.record's keys; no body positions:
after a switch there is no reference to compare them with)."""


@dataclasses.dataclass
class Args:
    checkpoint: str = str(SHIPPED_LLC)
    """An exported skill policy (policy.pt); default: the one shipped with the package."""
    motion_dir: tuple[str, ...] = (str(DATA),)
    """Folders (or files) of clips: the starts of each skill X are the first frames of its clips."""
    keys: str = str(ROOT / "configs" / "play" / "keys.yaml")
    """play.py's key-to-skill map: its skills are the ones switched between (unless --labels)."""
    labels: tuple[int, ...] | None = None
    """Switch between these skill labels instead (e.g. 1 13 31); each needs clips in --motion-dir."""
    episodes: int = 32
    """Episodes per ordered pair of skills."""
    lead: int = 30
    """Control steps (60 Hz) the policy plays the first skill X before the switch (0: switch at X's first frame)."""
    after: int = 120
    """Control steps played after the switch to Y (the pickup's test needs more than 60, the dribble's 60 for each
    bounce window)."""
    init_noise: float = 0.02
    """Std of the Gaussian noise on the starting hinge angles (rad), as in evaluate.py."""
    device: str = "auto"
    """'cuda', 'cpu' or 'auto'."""
    backend: Backend = "auto"
    """Simulator backend (see SimConfig)."""
    seed: int = 0
    """Seed of the starting noise."""
    json_out: str | None = None
    """Also write the results to this JSON file."""
    plot: str | None = None
    """Also draw the two matrices as a heatmap into this PNG (needs matplotlib, which the package does not
    install)."""


def switch_success(label: int, w: dict[str, torch.Tensor], ref_peak: torch.Tensor) -> torch.Tensor | None:
    """Per-episode success of skill `label` (Y) in the window after a switch: w holds the window's trajectories
    (each (T, E, ...), T = `after` steps; `alive` counts falls from the episode's start), ref_peak (E,) the highest
    ball of Y's clip of each episode. -> (E,) bool, or None: no test.

    evaluate.py's tests start at the clip's first frame, with the ball where the clip puts it. After a switch they
    read the window instead, and the ball is wherever X left it:
        pickup    unchanged: held (root above 0.5 m, the ball within 0.5 m of the root) for more than 60 of the
                  window's steps while standing. A ball X already holds counts: holding it is the pickup's outcome.
        layup     the ball above 1.8 m within the window, and standing at its end;
        shot      the ball's peak within the window within 0.2 m of Y's clip's peak;
                  for both, the ball counts only from the window's first hand touch: a ball already flying at the
                  switch (X's shot, released before it) scores nothing for Y.
        dribble   evaluate.py's test from the window's first step instead of step 100 (there is no pick-up from a
                  clip's start to wait for): the ball within 1.5 m of the root, touching the floor in every 60-step
                  window, standing at the end; and a hand touching it in every 60-step window too, so that a ball X
                  dropped, lying or rolling at the feet, is not a dribble.
        others    no test (None): standing alone is reported.
    """
    if label in skills.DRIBBLES:
        return dribbling(w, 0) & in_every_window(w["hand"], 0)
    if label in skills.LAYUPS + skills.SHOTS:
        touched = w["hand"].cummax(0).values  # (T, E): a hand has touched the ball in the window by this step
        ball = w["ball"].clone()
        ball[..., 2] *= touched  # the height counts from the first touch (these two tests read only the height)
        w = {**w, "ball": ball}
    return success(label, w, ref_peak)


def switch_labels(args: Args, keys: SkillKeys, files: list[Path], learned: list[int] | None) -> list[int]:
    """The skills to switch between, sorted: --labels, each checked, or the key map's that have clips among
    `files` and that the policy learned (`learned`; None: its file does not say)."""
    have = sorted({skill_label(f) for f in files})
    where = " ".join(args.motion_dir)
    if args.labels is None:
        labels = sorted(label for label in set(keys.mapping.values())
                        if label in have and (learned is None or label in learned))
        if not labels:
            raise UserError(f"{args.keys}: none of the key map's skills ({_names(sorted(set(keys.mapping.values())))})"
                            f" has clips in {where} and was learned by {args.checkpoint}; pass --labels")
        return labels
    for label in args.labels:
        if not 0 <= label < skills.NUM_SLOTS:
            raise UserError(f"--labels {label}: not a skill label (0 to {skills.NUM_SLOTS - 1})")
        if label not in have:
            raise UserError(f"--labels {label}: no clips of skill {label:03d} in {where} (its clips are of "
                            f"{_names(have)})")
        if learned is not None and label not in learned:
            raise UserError(f"--labels {label}: {args.checkpoint} did not learn skill {label:03d} (it learned "
                            f"{_names(learned)})")
    return sorted(set(args.labels))


def _names(labels) -> str:
    return ", ".join(f"{label:03d}" for label in labels)


def start_clips(files: list[Path], labels: list[int], episodes: int) -> list[Path]:
    """The clips the episodes start from: each skill's first `episodes` clips (evaluate.py's choice, which takes
    a skill's clips in turn), so that a skill with many clips (pickup: 39) loads only those used."""
    return [f for label in labels for f in [f for f in files if skill_label(f) == label][:episodes]]


def switch_env(policy, motions: MotionSet, num_pairs: int, args: Args, device: torch.device) -> ImitationEnv:
    """The worlds of all pairs' episodes (evaluate.py's evaluation environment, `lead + after` steps long)."""
    return ImitationEnv(evaluation_config(policy, args.lead + args.after, args.backend), motions,
                        num_pairs * args.episodes, device, seed=args.seed)


@torch.no_grad()
def play_switches(policy, env: ImitationEnv, pairs: list[tuple[int, int]],
                  args: Args) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Play every pair's episodes in one batch of worlds (switch_env's): pair p = (X, Y) in worlds p*E ..
    (p+1)*E - 1 (E = args.episodes). Each starts at the first frame of a clip of X (clips in turn, evaluate.py's
    start noise, the same for every pair), plays X for args.lead steps, is switched to Y and plays args.after steps.
    -> standing at the switch (W,) bool, W = len(pairs) * E, and the window's trajectories {WINDOW key: (after, W,
    ...)}, `alive` counted from the episode's start."""
    E, W, device = args.episodes, len(pairs) * args.episodes, env.device
    gen = torch.Generator(device=device).manual_seed(args.seed)
    noise = args.init_noise * torch.randn(E, env.spec.num_dofs, device=device, generator=gen)  # evaluate.py's draws
    motion_ids = torch.cat([clips_in_turn(env.motions, x, E) for x, _ in pairs])  # (W,)
    to_labels = torch.tensor([y for _, y in pairs], device=device).repeat_interleave(E)  # (W,)
    obs = start_at_first_frames(env, motion_ids, noise.repeat(len(pairs), 1))  # the condition: X
    alive = torch.ones(W, dtype=torch.bool, device=device)
    for _ in range(args.lead):
        obs, _, terminated, _, _ = env.step(policy(obs))
        alive &= ~terminated
    at_switch = alive.clone()
    env.skill[:] = skills.one_hot(to_labels)  # what a key does in play.py
    obs = env.observe()
    traj: dict[str, list] = {k: [] for k in WINDOW}
    for _ in range(args.after):
        obs, _, terminated, _, _ = env.step(policy(obs))
        alive &= ~terminated
        record(traj, env.sim, alive)
    return at_switch, {k: torch.stack(v) for k, v in traj.items()}


def pair_results(pairs: list[tuple[int, int]], at_switch: torch.Tensor, window: dict[str, torch.Tensor],
                 motions: MotionSet, episodes: int) -> list[dict]:
    """Each pair's shares (module docstring) from play_switches' output."""
    E = episodes
    peaks = {y: clip_ball_peak(motions, clips_in_turn(motions, y, E)) for y in {y for _, y in pairs}}  # (E,) each
    out = []
    for p, (x, y) in enumerate(pairs):
        cut = slice(p * E, (p + 1) * E)
        w = {k: v[:, cut] for k, v in window.items()}  # (T, E, ...)
        up = at_switch[cut]  # (E,)
        n = int(up.sum())
        ok = switch_success(y, w, peaks[y])
        out.append({"from": f"{x:03d}", "to": f"{y:03d}", "episodes": E, "standing_at_switch": float(up.float().mean()),
                    "standing": float((w["alive"][-1] & up).sum()) / n if n else None,
                    "success": None if ok is None or not n else float((ok & up).sum()) / n})
    return out


def matrix(results: list[dict], labels: list[int], key: str) -> list[list[float | None]]:
    """results' `key` as rows (from) by columns (to), in the order of labels."""
    at = {(r["from"], r["to"]): r[key] for r in results}
    return [[at[f"{x:03d}", f"{y:03d}"] for y in labels] for x in labels]


def print_matrices(results: list[dict], labels: list[int], args: Args, dt: float) -> None:
    print(f"{len(labels)} skills, {args.episodes} episodes per pair: the skill switches after {args.lead} control "
          f"steps ({args.lead * dt:.1f} s) of the first (rows), then {args.after} steps ({args.after * dt:.1f} s) "
          f"of the second (columns); shares of the episodes standing at the switch (-: none was)")
    at_switch = {x: [r["standing_at_switch"] for r in results if r["from"] == f"{x:03d}"] for x in labels}
    for key, title in (("standing", f"Standing {args.after * dt:.1f} s after the switch"),
                       ("success", "Doing the new skill (its success test over the window; n/a: no test)")):
        print(f"\n{title}")
        print(f"{'from / to':<30} {'at switch':>9}" + "".join(f" {f'{y:03d}':>6}" for y in labels))
        for x, row in zip(labels, matrix(results, labels, key)):
            cells = "".join(f" {_share(v, key, y):>6}" for y, v in zip(labels, row))
            up = sum(at_switch[x]) / len(at_switch[x])
            print(f"{f'{x:03d} {skills.skill_name(x)}':<30} {100 * up:>8.0f}%" + cells)


def _share(v: float | None, key: str, to: int) -> str:
    if v is not None:
        return f"{100 * v:.0f}%"
    return "n/a" if key == "success" and to not in SUCCESS_TESTS else "-"


def plot_matrices(plt, path: Path, results: list[dict], labels: list[int], args: Args, dt: float) -> None:
    """The standing and success matrices side by side as heatmaps (grey: no test, or none standing at the switch)."""
    K = len(labels)
    size = max(2.5, 0.55 * K)  # inches per matrix
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 3.5, size + 1.8), constrained_layout=True)
    for ax, key, title in ((axes[0], "standing", f"standing {args.after * dt:.1f} s\nafter the switch"),
                           (axes[1], "success", "doing the new skill\n(its success test)")):
        m = matrix(results, labels, key)
        values = [[math.nan if v is None else 100 * v for v in row] for row in m]
        cmap = plt.get_cmap("viridis").copy()
        cmap.set_bad("lightgrey")
        image = ax.imshow(values, cmap=cmap, vmin=0, vmax=100)
        for i, row in enumerate(m):
            for j, v in enumerate(row):
                ax.text(j, i, _share(v, key, labels[j]), ha="center", va="center", fontsize=8,
                        color="white" if v is not None and v < 0.6 else "black")
        ax.set_xticks(range(K), [f"{y:03d}" for y in labels])
        ax.set_yticks(range(K), [f"{x:03d} {skills.skill_name(x)}" for x in labels] if ax is axes[0]
                      else [f"{x:03d}" for x in labels])
        ax.set_xlabel("to")
        ax.set_ylabel("from")
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=axes, shrink=0.8, label="% of the episodes standing at the switch")
    fig.suptitle(f"{Path(args.checkpoint).name}: the skill switches after {args.lead * dt:.1f} s; "
                 f"{args.episodes} episodes per pair", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _written(path: Path, existed: bool) -> str:
    return f"{path}: written" + (" (it replaces the file that was there)" if existed else "")


def main(args: Args) -> dict:
    """The results: {checkpoint, args, labels, pairs: [{from, to, episodes, standing_at_switch, standing,
    success}], standing and success: K x K matrices (rows from, columns to)}; printed, and written as asked."""
    check_counts(args, "episodes", "after")
    check_counts(args, "lead", minimum=0)
    json_out = check_file(args.json_out, "--json-out")  # before the work, which a typo would waste
    plot = check_file(args.plot, "--plot", (".png",))
    plt = pyplot("--plot") if plot else None  # before the work, which a missing matplotlib would waste
    keys = SkillKeys.from_file(args.keys)
    files = find_clips(list(args.motion_dir))
    device = resolve_device(args.device)
    policy = load_policy(args.checkpoint, device, num_obs=skill_obs_dim)  # a missing or wrong file: one line
    labels = switch_labels(args, keys, files, policy.info.get("skill_labels"))
    motions = load_motions(start_clips(files, labels, args.episodes),
                           evaluation_config(policy, args.lead + args.after, args.backend), device)
    print(f"{args.checkpoint}: {lineage.describe(policy.info)}")
    pairs = [(x, y) for x in labels for y in labels]
    env = switch_env(policy, motions, len(pairs), args, device)
    at_switch, window = play_switches(policy, env, pairs, args)
    results = pair_results(pairs, at_switch, window, motions, args.episodes)
    dt = env.sim.dt  # s per control step
    print_matrices(results, labels, args, dt)
    out = {"checkpoint": args.checkpoint, "args": dataclasses.asdict(args),
           "labels": [f"{x:03d}" for x in labels], "skills": [skills.skill_name(x) for x in labels],
           "pairs": results, "standing": matrix(results, labels, "standing"),
           "success": matrix(results, labels, "success")}
    if json_out:
        existed = json_out.exists()
        json_out.write_text(json.dumps(out, indent=2))
        print(_written(json_out, existed))
    if plot:
        existed = plot.exists()
        plot_matrices(plt, plot, results, labels, args, dt)
        print(_written(plot, existed))
    return out


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
