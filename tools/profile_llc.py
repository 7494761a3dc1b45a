"""Where a train_llc.py iteration's time goes: train_llc.py run as it is, with its pieces timed.

    python tools/profile_llc.py --num-envs 16384 --iterations 8 --motion-dir data/BallPlay-M/layup
    python tools/profile_llc.py --burn-in 2 --num-envs 8 --iterations 4     # on a CPU, to try it
    python tools/profile_llc.py --update-bf16 --num-envs 16384 --iterations 10 --burn-in 5   # any flag of train_llc.py

Every flag but `--burn-in N` (iterations left out of the averages: compilation, the first updates; default 3) is
train_llc.py's. The tool wraps, without changing train_llc.py: the physics step (Simulator.step), the reward
(ImitationEnv.score), the observation (ImitationEnv.observe), the resets (ImitationEnv.reset_envs), the rest of
ImitationEnv.step, the policy's forward passes (Agent.dist, Agent.value) in the rollout and in the update, the
rest of the update's loss (ppo_loss; with --compile the whole loss, its forward passes fused into it), GAE,
backward, the optimizer's step, the iteration's logging and checkpoint, and under torchrun the all-reduces (of the
gradients, once per minibatch: skillmimic.distributed.average_gradients_; of the normalisers' statistics and the
log's scalars: all_reduce_sum_); time outside them is "other" of the rollout or the update (the update starts at
GAE, the rollout after the checkpoint). The device is synchronised at every boundary, so each piece's time is its
own but the whole runs slower than without the tool: both samples/s are printed. Prints a markdown table, ms per
iteration and share, averaged over the iterations after the burn-in. Under torchrun rank 0 prints its own table;
an all-reduce's time there includes waiting for the slowest rank to reach it (issue 20: the share of an iteration
spent in them):

    torchrun --standalone --nproc_per_node=2 tools/profile_llc.py --num-envs 16384 --iterations 10 --burn-in 5

`--kernels N` also runs torch's profiler over the first iteration after the burn-in (left out of the averages,
which start one iteration later) and prints its N most expensive operators by their own device time (CPU time on
a CPU) and the iteration's count of kernel and graph launches: where the pieces that are bound by launches spend
them.

    python tools/profile_llc.py --kernels 30 --num-envs 16384 --iterations 8 --motion-dir data/BallPlay-M/layup
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # train_llc.py and the package beside this folder
import train_llc  # noqa: E402
from skillmimic import distributed, runs  # noqa: E402
from skillmimic.cli import run_command  # noqa: E402
from skillmimic.envs.imitation import ImitationEnv  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402
from skillmimic.sim import Simulator  # noqa: E402


class PhaseClock:
    """Wall time split exclusively among nested named phases: each moment belongs to the innermost open phase, or
    to 'other (MODE)' when none is open. The device is synchronised at every boundary."""

    def __init__(self):
        self.mode = "rollout"
        self.stack: list[str] = []
        self.totals: dict[str, float] = {}
        self.device: torch.device | None = None
        self.counting = False
        self._last = time.perf_counter()

    def _tick(self) -> None:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        if self.counting:
            name = self.stack[-1] if self.stack else f"other ({self.mode})"
            self.totals[name] = self.totals.get(name, 0.0) + now - self._last
        self._last = now

    def wrap(self, fn, name: str, mode: str | None = None, per_mode: bool = False, mode_after: str | None = None):
        """fn timed as phase `name` (with ' (MODE)' appended when per_mode); entering it sets the mode to `mode`,
        leaving it to `mode_after` (where given)."""
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if torch.compiler.is_compiling():  # inside a torch.compile'd function: fused, so not timed apart
                return fn(*args, **kwargs)
            self._tick()
            if mode is not None:
                self.mode = mode
            self.stack.append(f"{name} ({self.mode})" if per_mode else name)
            try:
                return fn(*args, **kwargs)
            finally:
                self._tick()
                self.stack.pop()
                if mode_after is not None:
                    self.mode = mode_after
        return timed


LAUNCHES = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx", "cudaGraphLaunch",
            "cuGraphLaunch")  # the host calls that start work on the GPU, as torch's profiler names them


def kernel_table(prof: torch.profiler.profile, rows: int, device: torch.device) -> str:
    """The `rows` most expensive operators of a finished profile by their own device time (CPU time on a CPU),
    and the count of kernel and graph launches."""
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in LAUNCHES)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return (f"torch's profiler over one iteration: {launches:,} kernel and graph launches\n\n"
            + events.table(sort_by=sort, row_limit=rows))


def profiled_main(args: train_llc.Args, burn_in: int, kernels: int = 0) -> None:
    first = burn_in + (1 if kernels else 0)  # the iteration after which averages start
    if args.iterations is not None and args.iterations <= first:
        raise UserError(f"--iterations {args.iterations}: must exceed --burn-in {burn_in}"
                        + (" + 1 (--kernels profiles one more)" if kernels else "") + " to average anything")
    clock = PhaseClock()
    iterations = {"n": 0, "start": None, "samples": 0}
    profiler: list[torch.profiler.profile] = []  # the one running, over iteration burn_in + 1 (--kernels)

    timed_log = clock.wrap(runs.Run.log, "logging")
    loss_function = train_llc.loss_function

    def on_log(self, iteration, step, scalars, line):
        clock._tick()
        iterations["n"] = iteration
        if kernels and iteration == burn_in:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if clock.device is not None and clock.device.type == "cuda":
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            profiler.append(torch.profiler.profile(activities=activities))
            profiler[0].__enter__()
        if kernels and iteration == burn_in + 1:
            profiler[0].__exit__(None, None, None)
            iterations["kernels"] = kernel_table(profiler[0], kernels, clock.device or torch.device("cpu"))
        if iteration == first:  # averages start after this iteration
            clock.totals.clear()
            clock._tick()  # from now: the profiler's summary above is not counted
            clock.counting = True
            iterations["start"], iterations["samples"] = time.perf_counter(), step
        elif iteration > first:
            iterations["sps"] = (step - iterations["samples"]) / (time.perf_counter() - iterations["start"])
            iterations["plain_sps"] = scalars["samples_per_s"]
        return timed_log(self, iteration, step, scalars, line)

    original_init = ImitationEnv.__init__

    def env_init(self, *a, **k):
        original_init(self, *a, **k)
        clock.device = self.device

    patches = [
        (Simulator, "step", clock.wrap(Simulator.step, "physics")),
        (ImitationEnv, "score", clock.wrap(ImitationEnv.score, "reward")),
        (ImitationEnv, "observe", clock.wrap(ImitationEnv.observe, "observation")),
        (ImitationEnv, "reset_envs", clock.wrap(ImitationEnv.reset_envs, "resets")),
        (ImitationEnv, "step", clock.wrap(ImitationEnv.step, "environment, the rest", mode="rollout")),
        (ImitationEnv, "__init__", env_init),
        (train_llc.Agent, "dist", clock.wrap(train_llc.Agent.dist, "policy forward", per_mode=True)),
        (train_llc.Agent, "value", clock.wrap(train_llc.Agent.value, "value forward", per_mode=True)),
        (train_llc, "gae", clock.wrap(train_llc.gae, "GAE", mode="update")),
        (train_llc, "loss_function", lambda compiled: clock.wrap(loss_function(compiled), "loss (update)")),
        (torch.Tensor, "backward", clock.wrap(torch.Tensor.backward, "backward")),
        (torch.optim.Adam, "step", clock.wrap(torch.optim.Adam.step, "optimizer step")),
        # Looked up by name when called (share_normalizers_ binds all_reduce_sum_ at the run's start, after these).
        (distributed, "average_gradients_", clock.wrap(distributed.average_gradients_, "all-reduce (gradients)")),
        (distributed, "all_reduce_sum_", clock.wrap(distributed.all_reduce_sum_, "all-reduce (normalisers, log)")),
        (runs.Run, "log", on_log),
        (runs.Run, "end_iteration", clock.wrap(runs.Run.end_iteration, "checkpoint", mode_after="rollout")),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, new in patches:
        setattr(owner, name, new)
    try:
        train_llc.main(args)
    finally:
        for owner, name, old in saved:
            setattr(owner, name, old)
        if profiler and "kernels" not in iterations:  # stopped while profiling
            profiler[0].__exit__(None, None, None)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: rank 0's table alone
        return
    if "kernels" in iterations:
        print(f"\n{iterations['kernels']}")
    counted = iterations["n"] - first
    if counted < 1:  # stopped early (Ctrl-C)
        print(f"stopped after {iterations['n']} iterations, within the burn-in of {first}: nothing to average")
        return
    total = sum(clock.totals.values())
    print(f"\n{counted} iterations after a burn-in of {first}; {total / counted * 1000:.1f} ms each with the "
          f"tool's synchronisations ({iterations['sps']:,.0f} samples/s; train_llc.py's own last reading "
          f"{iterations['plain_sps']:,.0f})\n")
    print("| phase | ms per iteration | share |\n|---|---|---|")
    for name, t in sorted(clock.totals.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {t / counted * 1000:.1f} | {100 * t / total:.1f}% |")


def _take_count(argv: list[str], flag: str, default: int) -> int:
    """The count after `flag` in argv (removed from it), at least 1; `default` where the flag is absent."""
    if flag not in argv:
        return default
    i = argv.index(flag)
    try:
        n = int(argv[i + 1])
        if n < 1:
            raise ValueError
    except (IndexError, ValueError):
        print(f"error: {flag} takes a count of at least 1", file=sys.stderr)
        raise SystemExit(2) from None
    del argv[i : i + 2]
    return n


def main() -> None:
    argv = list(sys.argv[1:])
    burn_in, kernels = _take_count(argv, "--burn-in", 3), _take_count(argv, "--kernels", 0)
    sys.argv = [sys.argv[0], *argv]
    run_command(lambda args: profiled_main(args, burn_in, kernels), train_llc.Args, description=__doc__)


if __name__ == "__main__":
    main()
