"""What train_llc.py and train_hlc.py share around PPO: a run's life from its folder to its last checkpoint.

    args, resume = runs.resume_run(args, TRAIN_FORMAT, RESUME_OVERRIDES)   # --resume: the run's own settings
    run = runs.Run(args, resume, "runs/llc")        # the folder checked, the ranks and device, environments each
    ...build the environment, the agent and its optimizer...
    obs, start_iteration, global_step = run.restore(env, agent, optimizer)    # as new, or as the checkpoint left it
    with run.loop(lambda i: run.checkpoint(i, global_step, obs, entries, policy)):  # saves on exit
        for iteration in ...:
            summed = run.reduce({...})              # statistics summed over the ranks; the stop request agreed
            run.log(iteration, global_step, {"mean_reward": ..., "losses/value_loss": ...}, "reward 1.23")
            if run.end_iteration(iteration):        # checkpoint every checkpoint_every; True: stop
                break

Each guarantee lives here once, for both scripts:

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
import hashlib
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
from skillmimic.cli import merge
from skillmimic.errors import UserError


class Diverged(UserError):
    """A number of the run went NaN or Inf: the run stops without saving. Exit status 1 (the command line was
    fine; the training was not)."""

    status = 1


def resume_run(args: Any, fmt: str, overrides: tuple[str, ...],
               expect: dict[str, Any] | None = None) -> tuple[Any, dict | None]:
    """With --resume: (args with the resumed run's own settings but `overrides`, the checkpoint); refused in one
    line when the checkpoint cannot continue this run (load_resume). Without: (args, None)."""
    if not args.resume:
        return args, None
    resume = load_resume(args.resume, fmt, args.iterations, expect=expect)
    return merge(args, saved_args(resume, overrides), args.resume), resume


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


TAGS = {"mean_reward": "charts/reward", "samples_per_s": "charts/SPS", "kl": "losses/kl",
        "clipfrac": "losses/clipfrac"}
"""Tensorboard's tag of a progress.csv column (Run.log), where it is not charts/NAME."""
FORMATS = {"mean_reward": ".6g", "samples_per_s": ".0f"}
"""How progress.csv writes a column, where it is not with 4 significant digits."""


class Run:
    """One training run: its files in args.run_dir (written by the main rank), the processes it runs on, its
    logging, stop requests, finite guard and saving.

    args: the run's settings (run_dir, resume, overwrite, device, seed, num_envs, num_steps, num_minibatches,
    iterations and checkpoint_every are read here); resume: the loaded checkpoint or None; default_dir: the folder
    of a new run without --run-dir. Making it checks the folder (run_dir), joins the torchrun ranks and picks the
    device, and splits the environments over the ranks (num_envs in all, local_envs here); it changes no file:
    the folder is written from `loop` on, once everything is built, so that a run that fails to start changes none.
    """

    def __init__(self, args: Any, resume: dict | None, default_dir: str):
        self.args, self.resume = args, resume
        self.dir = run_dir(args.run_dir, default_dir, args.resume, args.overwrite)
        self.args = args = dataclasses.replace(args, run_dir=str(self.dir))
        self.ranks, self.device = distributed.init(args.device)
        default = getattr(args, "envs_per_gpu", 4096) if self.device.type == "cuda" else plan.CPU_ENVS
        self.num_envs, self.local_envs = distributed.split_envs(args.num_envs or default * self.ranks.world_size,
                                                                self.ranks, resume, args.resume)
        check_minibatches(self.local_envs, args.num_steps, args.num_minibatches)
        torch.manual_seed(args.seed)
        # A NaN reaches the finite guard as a NaN loss, rather than failing the distribution's argument check
        # (which would also wait for the device at every construction).
        torch.distributions.Distribution.set_default_validate_args(False)
        self.start = resume["iteration"] if resume is not None else 0
        self.iteration = self.start  # the last finished iteration
        self.steps_at_start = resume["global_step"] if resume is not None else 0
        self.source = Path(args.resume).parent if resume is not None else None  # the resumed run's folder
        self.own = self.source is not None and self.source.resolve() == self.dir.resolve()
        self.saved: int | None = self.start if self.own else None  # the iteration of the folder's checkpoint
        self.csv = self.dir / "progress.csv"
        self.writer: SummaryWriter | None = None
        self._t0 = self._created = time.time()
        self._stop: distributed.StopRequest | None = None
        self._stop_agreed = False
        self._save: Callable[[int], None] | None = None

    # --- the agent, the optimizer and the environment ------------------------------------------------------------
    def restore(self, env: Any, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, int, int]:
        """Start the run's model, optimizer and environment: on every rank the main rank's model (each rank then
        samples its own actions and minibatches), the environment reset; for a resumed run, all three as its
        checkpoint left them, with this rank's random state. They are what `checkpoint` saves and the finite guard
        watches. -> (the observation (local_envs, num_obs), the last finished iteration, the samples so far)."""
        self.env, self.model, self.optimizer = env, model, optimizer
        self._grads_finite = torch.ones((), dtype=torch.bool, device=self.device)
        optimizer.register_step_pre_hook(self._check_grads)
        distributed.broadcast_module_(model)
        if self.ranks.multi:
            torch.manual_seed(self.args.seed + self.ranks.rank)
        obs = env.reset()
        if self.resume is None:
            return obs, 0, 0
        model.load_state_dict(self.resume["agent"])
        optimizer.load_state_dict(self.resume["optimizer"])
        obs = restore_rank_state(self.resume, self.ranks, env, self.device)
        return obs, self.resume["iteration"], self.resume["global_step"]

    # --- the folder -------------------------------------------------------------------------------------------
    def _open(self) -> None:
        """Main rank: the folder, cleaned of what a killed or replaced run left; progress.csv (on resume, the
        resumed run's rows up to its checkpoint); tensorboard."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for tmp in (*self.dir.glob(".*.pt.*.tmp"), *self.dir.glob("policies/.*.pt.*.tmp")):
            tmp.unlink(missing_ok=True)  # left by a write that was killed (checkpoint.save_atomic)
        if self.own:  # policies a killed run kept after its last checkpoint
            for p in self.dir.glob("policies/iter_*.pt"):
                if _iteration_of(p.stem.removeprefix("iter_")) > self.start:
                    p.unlink()
        elif self.args.overwrite:  # run_dir() refused a folder that holds a run without it
            for name in ("checkpoint.pt", "policy.pt", "progress.csv"):
                (self.dir / name).unlink(missing_ok=True)
            for p in self.dir.glob("policies/iter_*.pt"):
                p.unlink()
        if not self.own:  # a new log: also when a run killed here before its first checkpoint left one
            shutil.rmtree(self.dir / "tb", ignore_errors=True)
        lines: list[str] = []  # a new run's header is written with its first row (Run.log)
        if self.source is not None and (self.source / "progress.csv").is_file():
            old = (self.source / "progress.csv").read_text().splitlines()
            lines = old[:1] + [row for row in old[1:] if _iteration_of(row.split(",")[0]) <= self.start]
        self.csv.write_text("".join(f"{line}\n" for line in lines))
        # Tensorboard hides what was logged in this folder after the checkpoint (its steps are samples).
        self.writer = SummaryWriter(str(self.dir / "tb"), purge_step=self.steps_at_start + 1)
        if self.resume is None:
            table = "\n".join(f"|{k}|{v}|" for k, v in dataclasses.asdict(self.args).items())
            self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")

    # --- the finite guard -------------------------------------------------------------------------------------
    def _check_grads(self, optimizer: torch.optim.Optimizer, *_) -> None:
        """Before every optimiser step: note a non-finite gradient, on the device (no sync in the update loop)."""
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if grads:
            self._grads_finite &= torch.stack([torch.isfinite(g).all() for g in grads]).all()

    def _guard(self, iteration: int, values: dict[str, float]) -> None:
        """Stop the run (Diverged) if one of `values`, a gradient of the update, or a weight or statistic of the
        model is NaN or Inf. The same on every rank: the values are all-reduced, the gradients averaged, the models
        identical."""
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

    # --- one iteration's statistics -------------------------------------------------------------------------------
    def reduce(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        """Named scalar tensors summed over the ranks, as floats (one all-reduce, one device sync); the ranks agree
        on a stop request (Ctrl-C or SIGTERM on any of them) in the same all-reduce."""
        requested = torch.tensor(float(self._stop is not None and self._stop.requested), device=self.device)
        summed = distributed.sum_named({**values, "stop": requested})
        self._stop_agreed = summed.pop("stop") > 0
        return summed

    def samples_per_s(self, global_step: int) -> float:
        """Samples per second since this process started the loop."""
        return (global_step - self.steps_at_start) / max(time.time() - self._t0, 1e-9)

    def log(self, iteration: int, global_step: int, scalars: dict[str, float], line: str) -> None:
        """After an iteration's update, on every rank: the finite guard on `scalars` (the same on every rank: means
        over the ranks), the gradients and the model; then, on the main rank, tensorboard, a progress.csv row and the
        progress line (`line` after the bar and the samples). A key with a '/' is a tensorboard tag alone
        ('losses/value_loss'); a plain key is also a column of progress.csv, whose header is the first row's keys
        after iteration and samples (tensorboard: TAGS, else charts/KEY; format: FORMATS, else 4 digits)."""
        self._guard(iteration, scalars)
        self.iteration = iteration
        if not self.ranks.main:
            return
        for k, v in scalars.items():
            self.writer.add_scalar(k if "/" in k else TAGS.get(k, f"charts/{k}"), v, global_step)
        columns = [k for k in scalars if "/" not in k]
        with self.csv.open("a") as f:
            if f.tell() == 0:
                f.write(",".join(["iteration", "samples", *columns]) + "\n")
            row = [f"{scalars[k]:{FORMATS.get(k, '.4g')}}" for k in columns]
            f.write(",".join([str(iteration), str(global_step), *row]) + "\n")
        width = 30
        done = int(width * iteration / max(self.args.iterations, 1))
        bar = "#" * done + "-" * (width - done)
        end = "\n" if not sys.stdout.isatty() else ""
        took = plan.time_left(time.time() - self._t0, iteration - self.start, self.args.iterations - iteration)
        print(f"\r[{bar}] {iteration}/{self.args.iterations}  steps {global_step:,}  {line}  {took}", end=end,
              flush=True)

    def end_iteration(self, iteration: int) -> bool:
        """After log: save every checkpoint_every iterations; True when the ranks agreed to stop (the loop saves)."""
        if iteration % self.args.checkpoint_every == 0:
            self._save(iteration)
        if self._stop_agreed and self.ranks.main:
            print(f"\nstop requested: saving iteration {iteration}", file=sys.stderr)
        return self._stop_agreed

    # --- saving -------------------------------------------------------------------------------------------------
    def checkpoint(self, iteration: int, global_step: int, obs: torch.Tensor, entries: dict, policy: dict,
                   keep_policy: bool = False) -> None:
        """Save the run, on every rank together (each rank's environments and random state go into the file): the
        main rank writes checkpoint.pt (the run's settings, model, optimizer and ranks, and `entries`: its format
        and what else the script records, or records otherwise, as train_hlc.py's args) and policy.pt (`policy`;
        also policies/iter_NNNNNN.pt with keep_policy).
        obs: this rank's last observation (local_envs, num_obs)."""
        per_rank = distributed.gather_to_main(rank_state(self.env, obs, self.device, self.model))
        if not self.ranks.main:
            return
        check_same_model(per_rank)
        self.save(iteration, {
            "iteration": iteration, "global_step": global_step, "num_envs": self.num_envs,
            "world_size": self.ranks.world_size, "args": dataclasses.asdict(self.args),
            "agent": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "ranks": per_rank, **entries,
        }, policy, keep_policy)

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
    def loop(self, save: Callable[[int], None]) -> Iterator[None]:
        """Around the training loop: opens the folder's files, and takes SIGINT / SIGTERM as a stop request (finish
        the iteration, save, stop). `save(iteration)` (called on every rank, Run.checkpoint) saves every
        checkpoint_every iterations (end_iteration) and, at the end or on a second Ctrl-C, the last finished
        iteration; after a divergence nothing; after a bug it saves (on one process only) and lets the traceback
        through."""
        if self.ranks.main:
            self._open()
        self._save = save
        stop = self._stop = distributed.StopRequest(self.ranks, on_request=self._stopping)
        self._t0 = time.time()
        if self.ranks.main:  # the clips, the simulator, the starting policy: minutes when something stalls
            print(f"set up in {self._t0 - self._created:.0f} s", flush=True)
        try:
            yield
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

    def announce(self, script: str, sim: Any, samples_per_step: int, defaults: plan.Defaults) -> None:
        """Main rank: the start-up line (skillmimic.plan.startup): where the run runs, how big it is, where it
        writes, where a resume starts. sim: the environment's simulator; samples_per_step: simulator samples per
        environment and step (a high-level decision drives several)."""
        if self.ranks.main:
            print(plan.startup(script, self.device, sim, self.num_envs, self.ranks.world_size, self.args.num_steps,
                               samples_per_step, self.args.iterations, self.args.run_dir, self.resume,
                               self.args.resume, defaults), flush=True)

    def _stopping(self) -> None:
        """Say at once that a stop was heard, and after which iteration the run stops: an iteration may take
        minutes. The loop reads the request at each iteration's end; the next read is of iteration start + polls + 1."""
        if self.ranks.main:
            last = self.start + (self._stop.polls if self._stop is not None else 0) + 1
            distributed.say(f"\nstop requested: the run stops after iteration {last} and saves it (Ctrl-C again: "
                            f"stop at once, saving the last finished iteration)\n")

    def _save_last(self, save: Callable[[int], None]) -> None:
        """Save the last finished iteration, unless a resumed run finished none."""
        if self.iteration > self.start or self.resume is None:
            save(self.iteration)

    def _close(self, clean: bool) -> None:
        if self.writer is not None:
            self.writer.close()
        distributed.close(self.ranks, clean=clean)


# --- each rank's part of a checkpoint -----------------------------------------------------------------------------
def rank_state(env, obs: torch.Tensor, device: torch.device, model: torch.nn.Module) -> dict:
    """What a checkpoint keeps of one rank: its environments, its last observation, its random generators, and
    a digest of its model (all ranks must hold the same)."""
    return checkpoint.to_cpu({
        "env": env.state_dict(), "obs": obs, "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "model_digest": digest(model.state_dict()),
    })


def check_same_model(per_rank: list[dict]) -> None:
    """Stop with a clear error if the ranks' models have drifted apart (they must stay identical)."""
    digests = {r["model_digest"] for r in per_rank}
    if len(digests) > 1:
        raise RuntimeError(f"the {len(per_rank)} ranks hold different models: gradients were not shared")


def restore_rank_state(ckpt: dict, ranks: distributed.Ranks, env, device: torch.device) -> torch.Tensor:
    """Put this rank's part of a training checkpoint back (a checkpoint without a 'ranks' list is one rank's);
    returns its observation."""
    state = ckpt["ranks"][ranks.rank] if "ranks" in ckpt else ckpt
    env.load_state_dict(state["env"])
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return state["obs"].to(device)


def digest(state_dict: dict[str, torch.Tensor]) -> str:
    """A SHA-256 of a model's state dict (parameters and buffers), to check that ranks hold the same model."""
    h = hashlib.sha256()
    for k, v in state_dict.items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _iteration_of(text: str) -> int:
    """The iteration number a progress.csv row or a kept policy's name starts with; a half-written one counts
    as after every checkpoint."""
    try:
        return int(text)
    except ValueError:
        return 2**62
