"""Plot a learning curve: reward against samples (a run's progress.csv) and success / accuracy against samples
(the JSON of `python -m skillmimic.evaluate --checkpoint RUN/policies --json-out curve.json`); or, for a
high-level run, reward and the training success rate from its progress.csv alone.

    python tools/plot_curve.py runs/llc_layup/progress.csv curve.json docs/llc_layup_curve.png
    python tools/plot_curve.py runs/hlc_throwing/progress.csv docs/hlc_throwing_curve.png
    python tools/plot_curve.py --compare A=runs/a/progress.csv B=runs/b/progress.csv arms.png   # A/B arms
    python tools/plot_curve.py --lineage "r1=runs/a/progress.csv=a_eval.json" "r2=runs/b/progress.csv=b_eval.json" out.png
    python tools/plot_curve.py --distill 013,031 W=runs/w/progress.csv I=runs/i/progress.csv distances.png

--lineage draws one policy's whole training when it went on over several runs, each continuing the last
(`train_llc.py --init-from`): NAME=PROGRESS.csv[=EVAL.json] per run, in order; the samples add up across runs,
and each run's evaluation (`python -m skillmimic.evaluate --json-out`, its first skill) is a point at the run's
end: success, accuracy and the ball error, with training's ball error and episode lengths beside them.

--distill LABELS draws students (train_llc.py --teachers): for each skill label of the comma-separated LABELS, a
panel of each run's distance to its teacher on that skill (the column distill_mse_LABEL: the mean squared
difference of the action means) against samples, on a log scale; a run that did not log the skill is left out of
its panel, and a panel no run logged is one line. NAME=A.csv+B.csv is one student over runs that continued each
other (--init-from), its samples adding up.

Needs matplotlib (a development tool, not a dependency of the package: `pip install matplotlib`). A missing
matplotlib, input file or column, or an output path that cannot be written, is one line (`error: ...`, exit
status 2), said before anything is drawn.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package beside this folder
from skillmimic.cli import run_guarded  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402
from skillmimic.outputs import check_file  # noqa: E402
from skillmimic.viz.plots import pyplot  # noqa: E402

USAGE = ("usage: python tools/plot_curve.py PROGRESS.csv [CURVE.json] OUT.png, or --compare NAME=PROGRESS.csv ... "
         "OUT.png, or --lineage NAME=PROGRESS.csv[=EVAL.json] ... OUT.png, or --distill LABELS NAME=PROGRESS.csv ... "
         "OUT.png (--help for more)")


def _rows(path: str, *columns: str) -> dict[int, dict]:
    """A progress.csv's rows by iteration (a resumed run may repeat iterations: the last one counts); one line if
    it is missing, empty or lacks a column the figure needs."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file (a run's progress.csv)")
    with open(path) as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("iteration", "samples", *columns) if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: not a progress.csv of train_llc.py or train_hlc.py (no column "
                            f"{', '.join(missing)})")
        rows = {int(r["iteration"]): r for r in reader}
    if not rows:
        raise UserError(f"{path}: no iterations in it yet")
    return rows


def main(progress_csv: str, curve_json: str | None, out_png: str) -> None:
    plt = pyplot("tools/plot_curve.py")
    rows = _rows(progress_csv, "mean_reward", *(() if curve_json else ("success_rate",)))
    its = sorted(rows)
    samples = [int(rows[i]["samples"]) / 1e6 for i in its]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    ax0.plot(samples, [float(rows[i]["mean_reward"]) for i in its])
    ax0.set(xlabel="samples (millions)", ylabel="mean reward per step", title="training reward")
    if curve_json is None:  # a high-level run: its training success rate
        ax1.plot(samples, [100 * float(rows[i]["success_rate"]) for i in its])
        ax1.set(xlabel="control steps (millions)", ylabel="% of finished episodes", title="training success rate")
        ax0.set(xlabel="control steps (millions)", ylabel="mean reward per decision")
        _save(fig, (ax0, ax1), out_png)
        return
    curve = json.load(open(curve_json))["curve"]
    labels = [s["label"] + " " + s["skill"] for s in curve[0]["skills"]]
    x = [c["samples"] / 1e6 for c in curve]
    for k, name in enumerate(labels):
        succ = [c["skills"][k]["success"] for c in curve]
        if succ[0] is not None:
            ax1.plot(x, [100 * v for v in succ], "o-", label=f"{name}: success")
        ax1.plot(x, [100 * c["skills"][k]["accuracy"] for c in curve], "s--", label=f"{name}: accuracy")
    ax1.set(xlabel="samples (millions)", ylabel="%", ylim=(-2, 102), title="evaluation (policy mean action)")
    ax1.legend()
    _save(fig, (ax0, ax1), out_png)


def compare(arms: list[str], out_png: str) -> None:
    """Training reward and episode length (high-level runs: training success rate) against samples of several
    runs, NAME=progress.csv each; and, when the runs logged them, the ball error on the clip's frames, the ball
    assist's factor and (where it changed: the mass curriculum) the ball's mass, on an axis of its own."""
    plt = pyplot("tools/plot_curve.py")
    tables = []
    for arm in arms:
        name, _, path = arm.rpartition("=")
        tables.append((name, path, _rows(path, "mean_reward")))
    ball = all("ball_error" in rows[min(rows)] for _, _, rows in tables)
    fig, axes = plt.subplots(1, 3 if ball else 2, figsize=(16 if ball else 11, 4))
    ax0, ax1 = axes[0], axes[1]
    mass_axis = None  # the ball panel's right-hand axis, made for the first run whose ball mass changed
    for name, path, rows in tables:
        its = sorted(rows)
        x = [int(rows[i]["samples"]) / 1e6 for i in its]
        ax0.plot(x, [float(rows[i]["mean_reward"]) for i in its], label=name or path)
        tasks = "success_rate" in rows[its[0]]  # high-level runs: their training success instead of lengths
        if tasks:
            ax1.plot(x, [100 * float(rows[i]["success_rate"]) for i in its], label=name or path)
        else:
            ax1.plot(x, [float(rows[i]["episode_length"]) for i in its], label=name or path)
        if ball:
            line, = axes[2].plot(x, [100 * float(rows[i]["ball_error"]) for i in its], label=name or path)
            if any(float(rows[i]["assist"]) > 0 for i in its):
                axes[2].plot(x, [100 * float(rows[i]["assist"]) for i in its], ":", color=line.get_color())
            logged = [(xi, float(rows[i]["ball_mass"])) for xi, i in zip(x, its) if rows[i].get("ball_mass")]
            if len({m for _, m in logged}) > 1:
                mass_axis = mass_axis or axes[2].twinx()
                mass_axis.plot(*zip(*logged), "--", color=line.get_color(), linewidth=0.8)
    if ball:
        axes[2].set(xlabel="samples (millions)", ylabel="cm  /  %",
                    title="ball error on the clip, cm (dotted: assist, %"
                          + (", dashed: mass" if mass_axis else "") + ")")
        if mass_axis:
            mass_axis.set(ylabel="ball mass, kg (dashed)")
    xlabel = "control steps (millions)" if tasks else "samples (millions)"
    ax0.set(xlabel=xlabel, ylabel="mean reward per step", title="training reward")
    if tasks:
        ax1.set(xlabel="control steps (millions)", ylabel="%", title="training success rate")
    else:
        ax1.set(xlabel="samples (millions)", ylabel="control steps", title="length of finished episodes")
    ax0.legend(fontsize=8)
    _save(fig, axes, out_png)


def lineage_series(stages: list[str]) -> dict:
    """The series of a lineage figure from NAME=PROGRESS.csv[=EVAL.json] stages, in training order: samples
    (millions) add up across stages. -> {"train": [(name, x, ball_error_mm or None, episode_length)],
    "eval": [(name, x_end, success % or None, accuracy %, ball mm)], "ends": [x_end per stage]}."""
    out, offset = {"train": [], "eval": [], "ends": []}, 0.0
    for stage in stages:
        parts = stage.split("=")
        if len(parts) not in (2, 3) or not all(parts):
            raise UserError(f"{stage}: expected NAME=PROGRESS.csv or NAME=PROGRESS.csv=EVAL.json")
        name, path = parts[:2]
        rows = _rows(path, "episode_length")
        its = sorted(rows)
        x = [offset + int(rows[i]["samples"]) / 1e6 for i in its]
        ball = [1000 * float(rows[i]["ball_error"]) for i in its] if "ball_error" in rows[its[0]] else None
        out["train"].append((name, x, ball, [float(rows[i]["episode_length"]) for i in its]))
        offset = x[-1]
        out["ends"].append(offset)
        if len(parts) == 3:
            if not Path(parts[2]).is_file():
                raise UserError(f"{parts[2]}: no such file (an evaluation's JSON)")
            try:
                r = json.loads(Path(parts[2]).read_text())
                r = r[0] if isinstance(r, list) else r
                s = r["skills"][0]
                succ = None if s["success"] is None else 100 * s["success"]
                out["eval"].append((name, offset, succ, 100 * s["accuracy"], s["ball_error_mm"]))
            except (ValueError, KeyError, IndexError, TypeError):
                raise UserError(f"{parts[2]}: not the JSON of python -m skillmimic.evaluate --json-out") from None
    return out


def lineage(stages: list[str], out_png: str) -> None:
    """One policy's training across the runs that continued it (lineage_series)."""
    series = lineage_series(stages)
    plt = pyplot("tools/plot_curve.py")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    ev = series["eval"]
    if ev:
        x = [e[1] for e in ev]
        if any(e[2] is not None for e in ev):
            axes[0].plot([e[1] for e in ev if e[2] is not None], [e[2] for e in ev if e[2] is not None], "o-",
                         label="success")
        axes[0].plot(x, [e[3] for e in ev], "s--", label="accuracy")
        axes[1].plot(x, [e[4] for e in ev], "o-", color="k", label="evaluation (from the clip's start)")
    for name, x, ball, length in series["train"]:
        if ball:
            axes[1].plot(x, ball, linewidth=0.8, label=f"training: {name}")
        axes[2].plot(x, length, linewidth=0.8, label=name)
    for ax in axes:
        for end in series["ends"][:-1]:
            ax.axvline(end, color="grey", linestyle=":", linewidth=0.8)
    axes[0].set(xlabel="samples (millions)", ylabel="%", ylim=(-2, 102),
                title="evaluation at each run's end (policy mean action)")
    axes[1].set(xlabel="samples (millions)", ylabel="mm", title="ball error on the clip's frames")
    axes[2].set(xlabel="samples (millions)", ylabel="control steps", title="length of finished training episodes")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=7)
    _save(fig, axes, out_png)


def distill_series(labels: str, arms: list[str]) -> dict[str, list[tuple[str, list[float], list[float]]]]:
    """The panels of a --distill figure: per skill label of the comma-separated labels, (name, samples in millions,
    distance to the teacher) of each NAME=progress.csv run that logged distill_mse_LABEL."""
    wanted = [w for w in labels.split(",") if w]
    if not wanted or any(not (w.isdigit() and len(w) == 3) for w in wanted):
        raise UserError(f"--distill {labels}: expected skill labels of three digits, comma-separated (e.g. 013,031)")
    runs = []
    for arm in arms:
        name, _, paths = arm.rpartition("=")
        chained, before = [], 0  # (samples since the first run's start, row) over the runs in order
        for path in paths.split("+"):
            rows = _rows(path, "distill_mse")
            chained += [(before + int(rows[i]["samples"]), rows[i]) for i in sorted(rows)]
            before = chained[-1][0]
        runs.append((name or paths, chained))
    panels = {}
    for label in wanted:
        column = f"distill_mse_{label}"
        panels[label] = [(name, [n / 1e6 for n, _ in rows], [float(r[column]) for _, r in rows])
                         for name, rows in runs if column in rows[0][1]]
        if not panels[label]:
            raise UserError(f"--distill: no run logged skill {label} (no column {column})")
    return panels


def distill(labels: str, arms: list[str], out_png: str) -> None:
    """Students' distances to their teachers per skill against samples (distill_series), a panel a skill."""
    panels = distill_series(labels, arms)
    plt = pyplot("tools/plot_curve.py")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    axes = list(axes[0])
    for ax, (label, series) in zip(axes, panels.items()):
        for name, x, y in series:
            ax.plot(x, y, label=name)
        ax.set(xlabel="samples (millions)", ylabel="distance to the teacher (MSE of action means)", yscale="log",
               title=f"skill {label}")
        ax.legend(fontsize=8)
    _save(fig, axes, out_png)


def _save(fig, axes, out_png: str) -> None:
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    print(f"wrote {out_png}")


def cli(argv: list[str]) -> None:
    """The command line: --help, --compare NAME=CSV ... OUT, --lineage NAME=CSV[=JSON] ... OUT, or CSV [JSON] OUT."""
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    if len(argv) >= 3 and argv[0] == "--lineage":
        check_file(argv[-1], "OUT.png")
        lineage(argv[1:-1], argv[-1])
        return
    if len(argv) >= 4 and argv[0] == "--distill":
        check_file(argv[-1], "OUT.png")
        distill(argv[1], argv[2:-1], argv[-1])
        return
    compare_arms = len(argv) >= 3 and argv[0] == "--compare"
    if not compare_arms and len(argv) not in (2, 3) or any(a.startswith("-") for a in argv[compare_arms:]):
        raise UserError(USAGE)
    check_file(argv[-1], "OUT.png")  # before the figure is drawn
    if compare_arms:
        compare(argv[1:-1], argv[-1])
    else:
        main(argv[0], argv[1] if len(argv) == 3 else None, argv[-1])


if __name__ == "__main__":
    run_guarded(lambda: cli(sys.argv[1:]))
