"""What train_llc.py and train_hlc.py share around PPO: the run's folder, resuming, tensorboard and progress.csv,
the progress line, stopping, the finite guard and saving. Each guarantee lives here once, for both scripts:

- A run writes into its own folder only. A resumed run continues in its checkpoint's folder unless --run-dir
  names another; a new run into a folder that holds a run (checkpoint.pt or policy.pt) is refused unless
  --overwrite says to replace it; a --run-dir that is a file, or under one, is refused.
- A resumed run's progress.csv (and tensorboard log and kept policies) are cut back to its checkpoint's
  iteration, so the iterations a killed run logged after its last checkpoint are not counted twice; the
  temporary files of a write that was killed (.checkpoint.pt.*.tmp) are removed when the run starts again.
- A non-finite loss, gradient or weight stops the run with one line naming the iteration and the term, and no
  file holding NaN or Inf is ever written: the folder keeps the last good checkpoint and policy.
- Ctrl-C or SIGTERM stops the run at the end of the iteration and saves it (a second Ctrl-C on one process stops
  it at once); under torchrun all ranks stop at the same iteration and save together (skillmimic.distributed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from skillmimic import checkpoint, distributed, outputs, plan
from skillmimic.errors import UserError


class Diverged(UserError):
    """A number of the run went NaN or Inf: the run stops without saving. Exit status 1 (the command line was
    fine; the training was not)."""

    status = 1


def load_resume(path: str, fmt: str, iterations: int | None, expect: dict[str, Any] | None = None) -> dict:
    """The training checkpoint to continue (--resume), refused in one line when it cannot continue this run: of
    another format or model, holding NaN or Inf, or already at --iterations (None: at the run's own count)."""
    ckpt = checkpoint.load(path, fmt, expect=expect)
    bad = checkpoint.non_finite(ckpt["agent"])
    if bad is not None:
        raise checkpoint.CheckpointError(f"{path}: refused: {bad} holds NaN or Inf (the run that wrote it diverged)")
    target = iterations if iterations is not None else ckpt.get("args", {}).get("iterations")
    if target is not None and ckpt["iteration"] >= target:
        asked = f"--iterations {target}" if iterations is not None else f"the run's own {target} iterations"
        raise UserError(f"{path}: already at iteration {ckpt['iteration']}, nothing to do with {asked}: pass "
                        f"--iterations N (N > {ckpt['iteration']}, counting its iterations) to continue it")
    return ckpt


def saved_args(resume: dict, overrides: tuple[str, ...]) -> dict:
    """The resumed run's arguments but those this command line sets (`overrides`). Checkpoints written before
    the environment took its size and device as arguments also hold env.num_envs and env.device: dropped."""
    saved = {k: v for k, v in resume["args"].items() if k not in overrides}
    if isinstance(saved.get("env"), dict):
        saved["env"] = {k: v for k, v in saved["env"].items() if k not in ("num_envs", "device")}
    return saved


def run_dir(run_dir: str | None, default: str, resume: str | None, overwrite: bool) -> Path:
    """The run's folder: --run-dir, else the resumed checkpoint's folder, else `default`. Refused when it is a
    file or under one, or when it holds a run other than the one resumed and --overwrite was not given."""
    folder = Path(run_dir) if run_dir else Path(resume).parent if resume else Path(default)
    for p in (folder, *folder.parents):
        if p.exists() and not p.is_dir():
            where = "is a file" if p == folder else f"is under {p}, which is a file"
            raise UserError(f"--run-dir {folder}: {where}; pass a folder")
    outputs.check_folder(folder, "--run-dir")  # before anything is built: a folder it cannot write into
    held = [n for n in ("checkpoint.pt", "policy.pt") if (folder / n).exists()]
    resumed_here = resume is not None and folder.resolve() == Path(resume).parent.resolve()
    if held and not overwrite and not resumed_here:
        resume_it = f"continue it with --resume {folder / 'checkpoint.pt'}, " if held[0] == "checkpoint.pt" else ""
        raise UserError(f"--run-dir {folder}: holds a run ({held[0]}); {resume_it}replace it with --overwrite, or "
                        f"pass another --run-dir")
    return folder


def check_minibatches(local_envs: int, num_steps: int, num_minibatches: int) -> None:
    """Refuse a rollout that splits into a minibatch of fewer than 2 samples: its advantages, normalised within
    the minibatch, would be NaN. Each rank splits its own local_envs * num_steps samples."""
    batch = local_envs * num_steps
    size = batch // num_minibatches
    if size < 2 or 0 < batch % size < 2:
        smallest = min(size, batch % size or size) if size else 0
        raise UserError(f"--num-minibatches {num_minibatches}: the {batch} samples of a rollout (--num-envs per "
                        f"process x --num-steps) make a minibatch of {smallest}; each needs at least 2: use more "
                        f"environments or steps, or fewer minibatches")


class Run:
    """One training run: its files in args.run_dir (written by the main rank), its logging, stop requests, finite
    guard and saving.

    args: the run's settings (run_dir, resume, overwrite and iterations are read here); ranks: this process's place
    under torchrun; resume: the loaded checkpoint or None; header: progress.csv's first line; model, optimizer:
    what the finite guard watches. Made once everything is built, so that a run that fails to start changes no file.
    """

    def __init__(self, args: Any, ranks: distributed.Ranks, resume: dict | None, header: str, model: nn.Module,
                 optimizer: torch.optim.Optimizer):
        self.dir, self.ranks, self.total = Path(args.run_dir), ranks, args.iterations
        self.resumed = resume is not None
        self.start = resume["iteration"] if resume is not None else 0
        self.iteration = self.start  # the last finished iteration
        self.steps_at_start = resume["global_step"] if resume is not None else 0
        source = Path(args.resume).parent if resume is not None else None  # the resumed run's folder
        own = source is not None and source.resolve() == self.dir.resolve()
        self.saved: int | None = self.start if own else None  # the iteration of the folder's checkpoint
        self.model = model
        self._grads_finite = torch.ones((), dtype=torch.bool, device=next(model.parameters()).device)
        optimizer.register_step_pre_hook(self._check_grads)
        self.csv = self.dir / "progress.csv"
        self.writer: SummaryWriter | None = None
        self._t0 = time.time()
        self._stop: distributed.StopRequest | None = None  # while the loop runs
        if not ranks.main:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        for tmp in (*self.dir.glob(".*.pt.*.tmp"), *self.dir.glob("policies/.*.pt.*.tmp")):
            tmp.unlink(missing_ok=True)  # left by a write that was killed (checkpoint.save_atomic)
        if own:  # policies a killed run kept after its last checkpoint
            for p in self.dir.glob("policies/iter_*.pt"):
                if _iteration_of(p.stem.removeprefix("iter_")) > self.start:
                    p.unlink()
        elif args.overwrite:  # run_dir() refused a folder that holds a run without it
            for name in ("checkpoint.pt", "policy.pt", "progress.csv"):
                (self.dir / name).unlink(missing_ok=True)
            for p in self.dir.glob("policies/iter_*.pt"):
                p.unlink()
        if not own:  # a new log: also when a run killed here before its first checkpoint left one
            shutil.rmtree(self.dir / "tb", ignore_errors=True)
        # progress.csv: the header and, on resume, the resumed run's rows up to its checkpoint.
        lines = [header]
        if source is not None and (source / "progress.csv").is_file():
            old = (source / "progress.csv").read_text().splitlines()
            lines = old[:1] + [row for row in old[1:] if _iteration_of(row.split(",")[0]) <= self.start]
        self.csv.write_text("".join(f"{line}\n" for line in lines))
        # Tensorboard hides what was logged in this folder after the checkpoint (its steps are samples).
        self.writer = SummaryWriter(str(self.dir / "tb"), purge_step=self.steps_at_start + 1)
        if resume is None:
            table = "\n".join(f"|{k}|{v}|" for k, v in dataclasses.asdict(args).items())
            self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")

    # --- the finite guard -------------------------------------------------------------------------------------
    def _check_grads(self, optimizer: torch.optim.Optimizer, *_) -> None:
        """Before every optimiser step: note a non-finite gradient, on the device (no sync in the update loop)."""
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if grads:
            self._grads_finite &= torch.stack([torch.isfinite(g).all() for g in grads]).all()

    def end_iteration(self, iteration: int, values: dict[str, float]) -> None:
        """After an iteration's update, on every rank: stop the run (Diverged) if one of `values` (the reward and
        losses, summed over the ranks), a gradient of the update, or a weight or statistic of the model is NaN or
        Inf. The same on every rank: the values are all-reduced, the gradients averaged, the models identical."""
        term = next((f"{k} ({v})" for k, v in values.items() if not math.isfinite(v)), None)
        if term is None:
            named = [(k, t) for k, t in self.model.state_dict().items() if t.is_floating_point()]
            finite = torch.stack([self._grads_finite] + [torch.isfinite(t).all() for _, t in named]).tolist()
            if not finite[0]:
                term = "gradient"
            elif not all(finite):
                term = f"weight {named[finite.index(False, 1) - 1][0]}"
        if term is not None:
            raise Diverged(f"iteration {iteration}: non-finite {term}; the run stops without saving it")
        self.iteration = iteration

    # --- logging ------------------------------------------------------------------------------------------------
    def samples_per_s(self, global_step: int) -> float:
        """Samples per second since this process started the loop."""
        return (global_step - self.steps_at_start) / max(time.time() - self._t0, 1e-9)

    def log(self, iteration: int, global_step: int, row: str, line: str) -> None:
        """Main rank: one progress.csv row (iteration, samples, then `row`) and the progress line (`line` after the
        bar and the samples)."""
        with self.csv.open("a") as f:
            f.write(f"{iteration},{global_step},{row}\n")
        width = 30
        done = int(width * iteration / max(self.total, 1))
        bar = "#" * done + "-" * (width - done)
        end = "\n" if not sys.stdout.isatty() else ""
        took = plan.time_left(time.time() - self._t0, iteration - self.start, self.total - iteration)
        print(f"\r[{bar}] {iteration}/{self.total}  steps {global_step:,}  {line}  {took}", end=end, flush=True)

    # --- saving -------------------------------------------------------------------------------------------------
    def save(self, iteration: int, ckpt: dict, policy: dict, keep_policy: bool = False) -> None:
        """Main rank: write checkpoint.pt and policy.pt (and policies/iter_NNNNNN.pt with keep_policy), each
        atomically; nothing at all if a weight, statistic or optimiser state holds NaN or Inf."""
        bad = checkpoint.non_finite({"agent": ckpt["agent"], "optimizer": ckpt["optimizer"], "policy": policy})
        if bad is not None:
            raise Diverged(f"iteration {iteration}: non-finite {bad}; not saved")
        checkpoint.save_atomic(ckpt, self.dir / "checkpoint.pt")
        checkpoint.save_atomic(policy, self.dir / "policy.pt")
        if keep_policy:
            checkpoint.save_atomic(policy, self.dir / "policies" / f"iter_{iteration:06d}.pt")
        self.saved = iteration

    def _diverged(self, e: Diverged) -> Diverged:
        """e, with what the run folder now holds (known to the main rank, which writes it)."""
        if not self.ranks.main:
            return e
        if self.saved is None:
            return Diverged(f"{e}; nothing was saved to {self.dir}")
        return Diverged(f"{e}; {self.dir} keeps the checkpoint and policy of iteration {self.saved}")

    @contextlib.contextmanager
    def loop(self, save: Callable[[int], None]) -> Iterator[distributed.StopRequest]:
        """Around the training loop; yields the stop request (SIGINT / SIGTERM: finish the iteration, save, stop).
        At the end, or on a second Ctrl-C, saves the last finished iteration with `save` (called on every rank);
        after a divergence saves nothing; after a bug saves (on one process only) and lets the traceback through."""
        stop = self._stop = distributed.StopRequest(self.ranks, on_request=self._stopping)
        self._t0 = time.time()
        try:
            yield stop
        except KeyboardInterrupt:  # a second Ctrl-C on a single process
            print("\ninterrupted: saving", file=sys.stderr)
        except BaseException as e:
            stop.restore()
            if not isinstance(e, Diverged) and not self.ranks.multi:  # several ranks can save only together
                try:
                    self._save_last(save)
                except Exception as save_error:
                    print(f"\nnot saved: {save_error}", file=sys.stderr)
            self._close(clean=False)
            if isinstance(e, Diverged):
                raise self._diverged(e) from None
            raise
        stop.restore()
        try:
            self._save_last(save)
        except Diverged as e:
            self._close(clean=False)
            raise self._diverged(e) from None
        except BaseException:
            self._close(clean=False)
            raise
        self._close(clean=True)
        if self.ranks.main:
            print(f"\ncheckpoint: {self.dir / 'checkpoint.pt'}   policy: {self.dir / 'policy.pt'}")

    def _stopping(self) -> None:
        """Say at once that a stop was heard, and after which iteration the run stops: an iteration may take
        minutes. The loop reads the request at each iteration's end; the next read is of iteration start + polls + 1."""
        if self.ranks.main:
            last = self.start + (self._stop.polls if self._stop is not None else 0) + 1
            distributed.say(f"\nstop requested: the run stops after iteration {last} and saves it (Ctrl-C again: "
                            f"stop at once, saving the last finished iteration)\n")

    def _save_last(self, save: Callable[[int], None]) -> None:
        """Save the last finished iteration, unless a resumed run finished none."""
        if self.iteration > self.start or not self.resumed:
            save(self.iteration)

    def _close(self, clean: bool) -> None:
        if self.writer is not None:
            self.writer.close()
        distributed.close(self.ranks, clean=clean)


def _iteration_of(text: str) -> int:
    """The iteration number a progress.csv row or a kept policy's name starts with; a half-written one counts
    as after every checkpoint."""
    try:
        return int(text)
    except ValueError:
        return 2**62
