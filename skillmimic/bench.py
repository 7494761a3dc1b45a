"""Simulator benchmark: control steps per second with the load that training puts on the simulator.

    python -m skillmimic.bench                              # 4,096 and 16,384 worlds, MuJoCo Warp on a GPU
    python -m skillmimic.bench --config configs/bench/cpu.yaml   # plain MuJoCo, one world, one CPU core
    python -m skillmimic.bench --hand rigid                 # another hand (skillmimic.model.HANDS)

Each control step: PD targets from the reference (a gather from the motion table, like a policy's action),
one control step (`substeps` physics steps), and re-initialisation of 1/`reinit_every` of the worlds from
random dataset frames (so each world restarts every `reinit_every` steps, as reference-state init does in
training, and the humanoids stay mostly upright). Timed after a warm-up; with `--profile` each phase is also
timed on its own (with a device synchronisation around it, so the total is a bit slower than the plain run).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from skillmimic import DATA
from skillmimic.cli import check_counts, run_command
from skillmimic.model import Hand
from skillmimic.motion import MotionSet
from skillmimic.outputs import check_file
from skillmimic.device import resolve_device
from skillmimic.sim import Backend, SimConfig, make_sim


@dataclasses.dataclass
class Args:
    num_worlds: tuple[int, ...] | None = None
    """World counts to measure, one run each (default: 4096 and 16384 on a GPU, 1 on the CPU)."""
    steps: int = 300
    """Timed control steps per run."""
    warmup: int = 30
    """Untimed control steps before timing."""
    reinit_every: int = 30
    """Each world is re-initialised from a random dataset frame every this many control steps."""
    motion_dir: str = str(DATA)
    """Clips to initialise from."""
    hand: Hand = "full"
    """The hand's articulation: 'full', 'anatomical', 'hinge1' or 'rigid' (see skillmimic.model)."""
    backend: Backend = "auto"
    """'mujoco_warp', 'mujoco' or 'auto' (see SimConfig)."""
    device: str = "auto"
    """'cuda', 'cpu' or 'auto'."""
    substeps: int = 2
    """Physics steps (1/120 s) per control step."""
    self_collision: bool = False
    """Let the humanoid's bodies collide with each other."""
    iterations: int | None = None
    """Override the solver's iteration limit (see SimConfig)."""
    ls_iterations: int | None = None
    """Override the solver's line-search iteration limit."""
    tolerance: float | None = None
    """Override the solver's tolerance."""
    njmax: int = SimConfig.njmax
    """MuJoCo Warp: constraint rows per world (see SimConfig)."""
    nconmax: int = SimConfig.nconmax
    """MuJoCo Warp: contact slots per world (see SimConfig)."""
    profile: bool = False
    """Also time each phase of a step separately, and on MuJoCo Warp each stage of its physics step."""
    seed: int = 0
    """Random seed for the initial frames."""
    json_out: str | None = None
    """Write the results to this JSON file as well."""


class _Timer:
    """Accumulates wall time of named phases, synchronising the device around each (profile mode only)."""

    def __init__(self, device: torch.device, enabled: bool):
        self.device, self.enabled, self.total = device, enabled, {}

    def __call__(self, name: str):
        timer = self

        class _Phase:
            def __enter__(self):
                if timer.enabled:
                    _sync(timer.device)
                    self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                if timer.enabled:
                    _sync(timer.device)
                    timer.total[name] = timer.total.get(name, 0.0) + time.perf_counter() - self.t0

        return _Phase()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args: Args, num_worlds: int, motions: MotionSet) -> dict:
    device = resolve_device(args.device)
    cfg = SimConfig(hand=args.hand, backend=args.backend, substeps=args.substeps, self_collision=args.self_collision,
                    iterations=args.iterations, ls_iterations=args.ls_iterations, tolerance=args.tolerance,
                    njmax=args.njmax, nconmax=args.nconmax)
    t0 = time.perf_counter()
    sim = make_sim(cfg, num_worlds, device)
    setup_s = time.perf_counter() - t0
    gen = torch.Generator(device=device).manual_seed(args.seed)
    n_m = motions.num_motions

    def random_frames(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        mid = torch.randint(0, n_m, (n,), device=device, generator=gen)
        fid = (torch.rand(n, device=device, generator=gen) * (motions.lengths[mid] - 1)).long()
        return mid, fid

    all_ids = torch.arange(num_worlds, device=device)
    motion_ids, frame_ids = random_frames(num_worlds)
    sim.reset(all_ids, *motions.state(motion_ids, frame_ids))
    groups = [all_ids[g :: args.reinit_every] for g in range(args.reinit_every)]
    timer = _Timer(device, args.profile)
    unstable = torch.zeros((), dtype=torch.long, device=device)

    def one_step(i: int) -> None:
        nonlocal unstable
        with timer("reference gather + ctrl"):
            frame_ids.add_(1)
            sim.ctrl.copy_(motions.table.dof_pos[motions.rows(motion_ids, frame_ids)])
        with timer("physics (substeps + forward)"):
            sim._physics_step()
        with timer("flags, derived tensors, contacts"):
            sim._after_physics()
            unstable += sim.unstable.sum()
        with timer("re-init (gather + write + forward)"):
            ids = groups[i % args.reinit_every]
            mid, fid = random_frames(ids.shape[0])
            motion_ids[ids], frame_ids[ids] = mid, fid
            sim.reset(ids, *motions.state(mid, fid))

    for i in range(args.warmup):
        one_step(i)
    _sync(device)
    timer.total.clear()
    t0 = time.perf_counter()
    for i in range(args.steps):
        one_step(args.warmup + i)
    _sync(device)
    elapsed = time.perf_counter() - t0
    out = {
        "backend": sim.backend,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "num_worlds": num_worlds,
        "hand": args.hand,
        "nv": sim.spec.nv,
        "substeps": args.substeps,
        "env_steps_per_s": num_worlds * args.steps / elapsed,
        "physics_steps_per_s": num_worlds * args.steps * args.substeps / elapsed,
        "ms_per_step": 1000 * elapsed / args.steps,
        "setup_s": setup_s,
        "unstable_worlds": int(unstable),
    }
    if args.profile:
        out["phase_ms_per_step"] = {k: 1000 * v / args.steps for k, v in timer.total.items()}
        if sim.backend == "mujoco_warp" and device.type == "cuda":  # Warp times events on GPUs only
            out["warp_stage_ms_per_step"] = _warp_stages(sim, 10)
    return out


def _warp_stages(sim, steps: int) -> dict:
    """Time MuJoCo Warp's own stages (its event tracer) over `steps` control steps run eagerly, not as a graph.

    Returns {"step.fwd_position.collision": ms per control step, ...}, two levels below the top.
    """
    import warp as wp
    from mujoco_warp._src.warp_util import EventTracer

    totals: dict[str, float] = {}
    with EventTracer() as tracer:
        for _ in range(steps):
            sim._run(sim._physics_kernels)
        wp.synchronize()
        trace = tracer.trace()

    def walk(prefix: str, node: dict, depth: int) -> None:
        for name, (times, sub) in node.items():
            key = prefix + name
            totals[key] = totals.get(key, 0.0) + sum(times) / steps
            if depth < 2:
                walk(key + ".", sub, depth + 1)

    walk("", trace, 0)
    return totals


def main(args: Args) -> list[dict]:
    check_counts(args, "num_worlds", "steps", "reinit_every", "substeps", "njmax", "nconmax")
    check_counts(args, "warmup", minimum=0)
    check_file(args.json_out, "--json-out")  # before the work, which a typo would waste
    device = resolve_device(args.device)
    motions = MotionSet(args.motion_dir, device=device, hand=args.hand)
    results = []
    counts = args.num_worlds or ((4096, 16384) if device.type == "cuda" else (1,))
    for n in counts:
        r = run(args, n, motions)
        results.append(r)
        line = (f"{r['backend']:>11} {r['device']}, {args.hand} hand: {n:>6} worlds  "
                f"{r['env_steps_per_s']:>10,.0f} env steps/s  "
                f"({r['physics_steps_per_s']:,.0f} physics steps/s, {r['ms_per_step']:.2f} ms/step, "
                f"setup {r['setup_s']:.1f} s, unstable {r['unstable_worlds']})")
        print(line, flush=True)
        for k, v in r.get("phase_ms_per_step", {}).items():
            print(f"    {k:<38} {v:8.3f} ms/step")
        if "warp_stage_ms_per_step" in r:
            print("    MuJoCo Warp stages (eager, no graph):")
            for k, v in r["warp_stage_ms_per_step"].items():
                print(f"      {k:<50} {v:8.3f} ms/step")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
