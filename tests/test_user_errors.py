"""Every command turns a user's mistake into one line on stderr, `error: ...` naming the flag or file and the
problem, and exit status 2, with no traceback and before anything is built. The commands run as a user runs
them (subprocesses, from another folder), a few at a time: each takes about the time of its imports."""

import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from paths import DATA, ROOT
from scripts import importable_env, run_python
from skillmimic.envs.observations import SKILL_OBS_DIM
from skillmimic.model import load_spec
from skillmimic.policy import SkillPolicy, policy_file

LAYUP = DATA / "layup"
# name: (command line, with {d} for the folder of this module's files; what the line must say)
CASES = {
    "missing motion folder": ("train_llc.py --motion-dir {d}/none", "{d}/none: no such file or folder"),
    "bad motion folder": ("train_llc.py --motion-dir {d}/clips", "{d}/clips/031_bad.pt: shape [3, 5], expected"),
    "run folder is a file": ("train_llc.py --run-dir {d}/file", "--run-dir {d}/file: is a file"),
    "run folder under a file": ("train_hlc.py --run-dir {d}/file/run", "is under {d}/file, which is a file"),
    "negative environment count": ("train_llc.py --num-envs -4", "--num-envs -4: must be at least 1"),
    "no environments": ("train_hlc.py --num-envs 0", "--num-envs 0: must be at least 1"),
    "no steps": ("train_llc.py --num-steps 0", "--num-steps 0: must be at least 1"),
    "a minibatch of one sample": ("train_llc.py --num-envs 2 --num-steps 4 --device cpu",
                                  "--num-minibatches 8: the 8 samples of a rollout"),
    "a negative wrist gain": ("train_llc.py --env.physics.wrist-kp -300",
                              "physics wrist_kp -300.0: must be 0 (keep the MJCF's) or a positive gain"),
    "a ball noise share above 1": ("train_llc.py --env.ball-noise.share 1.5",
                                   "--env.ball-noise.share 1.5: must be within [0, 1]"),
    "YAML num_envs: four": ("train_llc.py --config {d}/four.yaml",
                            "{d}/four.yaml: num_envs: expected an integer or null, got 'four'"),
    "YAML hidden: 64": ("train_hlc.py --config {d}/hidden.yaml", "{d}/hidden.yaml: hidden: expected a list"),
    "resume of a finished run": ("train_llc.py --resume {d}/done.pt --iterations 3",
                                 "{d}/done.pt: already at iteration 3"),
    "resume of another model": ("train_llc.py --resume {d}/other.pt",
                                f"{{d}}/other.pt: made for num_obs=10, this model has num_obs={SKILL_OBS_DIM}"),
    "resume of a policy": ("train_llc.py --resume {d}/nan.pt",
                           "{d}/nan.pt: is a skill policy (a policy.pt of train_llc.py), not a training checkpoint of "
                           "train_llc.py; pass it to play.py --checkpoint"),
    "resume of a skill policy as a high-level run": ("train_hlc.py --resume {d}/nan.pt",
                                                     "not a training checkpoint of train_hlc.py"),
    "a training checkpoint as the skill policy": ("train_hlc.py --llc {d}/done.pt --device cpu",
                                                  "--llc: {d}/done.pt: is a training checkpoint of train_llc.py, not a "
                                                  "skill policy (a policy.pt of train_llc.py); pass it to train_llc.py "
                                                  "--resume"),
    "a training checkpoint to play, beside its policy": ("play.py --headless --steps 1 --checkpoint {d}/run/checkpoint.pt",
                                                         "{d}/run/checkpoint.pt: is a training checkpoint of "
                                                         "train_llc.py, not a skill policy (a policy.pt of train_llc.py)"
                                                         "; its run's policy is {d}/run/policy.pt"),
    "resume of an empty file": ("train_llc.py --resume {d}/empty.pt", "{d}/empty.pt: an empty file (0 bytes), not one "
                                                                      "that torch.save wrote"),
    "play an empty file": ("play.py --headless --steps 1 --checkpoint {d}/empty.pt", "{d}/empty.pt: an empty file"),
    "resume of a cut-short checkpoint": ("train_hlc.py --resume {d}/cut.pt", "{d}/cut.pt: cut short or damaged ("),
    "a text file as a policy": ("-m skillmimic.evaluate --checkpoint {d}/four.yaml --device cpu",
                                "{d}/four.yaml: not a file that torch.save wrote ("),
    "a binary file as the config": ("train_llc.py --config {d}/binary.yaml", "{d}/binary.yaml: not a YAML file"),
    "resume of a run at its own iterations": ("train_llc.py --resume {d}/own.pt",
                                              "{d}/own.pt: already at iteration 3, nothing to do with the run's own 3 "
                                              "iterations: pass --iterations N"),
    "a new run into a folder that holds one": ("train_hlc.py --run-dir {d}/held",
                                               "--run-dir {d}/held: holds a run (checkpoint.pt); continue it with "
                                               "--resume {d}/held/checkpoint.pt, replace it with --overwrite"),
    "evaluate no episodes": ("-m skillmimic.evaluate --episodes 0", "--episodes 0: must be at least 1"),
    "evaluate a non-finite policy": ("-m skillmimic.evaluate --checkpoint {d}/nan.pt --device cpu",
                                     "{d}/nan.pt: refused: actor.0.weight holds NaN or Inf"),
    "evaluate an empty folder": ("-m skillmimic.evaluate --checkpoint {d}/clips/none --device cpu",
                                 "{d}/clips/none: no policy files (*.pt) in this folder"),
    "evaluate_task no episodes": ("-m skillmimic.evaluate_task --episodes 0", "--episodes 0: must be at least 1"),
    "a high-level policy on a different skill policy": ("-m skillmimic.evaluate_task --task heading --llc {d}/nan.pt "
                                                        "--device cpu", "); found {d}/nan.pt (sha256 "),
    "bench no steps": ("-m skillmimic.bench --steps 0", "--steps 0: must be at least 1"),
    "video of a missing folder": ("-m skillmimic.viz.video {d}/none {d}/out.mp4", "{d}/none: no such folder of frames"),
    "play no humanoids": ("play.py --num-envs 0", "--num-envs 0: must be at least 1"),
    # Output paths are checked before the work: here before the policy is read (none.pt does not exist).
    "a video that is a folder": ("play.py --headless --checkpoint {d}/none.pt --video {d}/dir.mp4",
                                 "--video {d}/dir.mp4: is a folder"),
    "a video under a file": ("play.py --headless --checkpoint {d}/none.pt --video {d}/file/out.mp4",
                             "--video {d}/file/out.mp4: is under {d}/file, which is a file"),
    "a video of another kind": ("play.py --headless --checkpoint {d}/none.pt --video {d}/out.avi",
                                "--video {d}/out.avi: name a .mp4 or a .gif file"),
    "images under a file": ("play.py --headless --checkpoint {d}/none.pt --save-images {d}/file/img",
                            "--save-images {d}/file/img: is under {d}/file, which is a file"),
    "a recording of no steps": ("play.py --headless --steps 0 --video {d}/v.mp4", "--steps 0: records nothing"),
    "a frame rate above the simulation's": ("play.py --fps 120", "--fps 120: must be above 0 and at most 60"),
    "evaluate into a file under a file": ("-m skillmimic.evaluate --checkpoint {d}/none.pt --json-out {d}/file/r.json",
                                          "--json-out {d}/file/r.json: is under {d}/file, which is a file"),
    "evaluate_task into a folder": ("-m skillmimic.evaluate_task --checkpoint {d}/none.pt --json-out {d}/clips",
                                    "--json-out {d}/clips: is a folder"),
    "bench into a file under a file": ("-m skillmimic.bench --motion-dir {d}/none --json-out {d}/file/b.json",
                                       "--json-out {d}/file/b.json: is under {d}/file"),
    "plot_curve without its arguments": ("tools/plot_curve.py", "usage: python tools/plot_curve.py PROGRESS.csv"),
    "play a missing policy": (f"play.py --headless --steps 1 --checkpoint {{d}}/none.pt --motion-dir {LAYUP}",
                              "{d}/none.pt: no such checkpoint file (train one with train_llc.py, or use "
                              "--play-dataset)"),
}
if not torch.cuda.is_available():
    CASES["a GPU where there is none"] = ("train_llc.py --device cuda", "--device cuda: torch sees no GPU here")
if importlib.util.find_spec("matplotlib") is None:  # a development tool, not installed with the package
    CASES["plot_curve without matplotlib"] = ("tools/plot_curve.py {d}/progress.csv {d}/out.png",
                                              "tools/plot_curve.py needs matplotlib, which the package does not "
                                              "install: pip install matplotlib")
else:
    CASES["plot_curve of a missing file"] = ("tools/plot_curve.py {d}/none.csv {d}/out.png",
                                             "{d}/none.csv: no such file")


def _command(line: str, d) -> list[str]:
    args = line.format(d=d).split()
    return args if args[0] == "-m" else [str(ROOT / args[0]), *args[1:]]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("errors")
    (d / "file").write_text("not a folder")
    (d / "clips").mkdir()
    torch.save(torch.zeros(3, 5), d / "clips" / "031_bad.pt")
    (d / "four.yaml").write_text("num_envs: four\n")
    (d / "hidden.yaml").write_text("hidden: 64\n")
    n = SKILL_OBS_DIM, load_spec("full").num_dofs  # full-hand files (a file without a hand is one)
    torch.save({"format": "skillmimic-llc-train/1", "num_obs": n[0], "num_actions": n[1], "iteration": 3,
                "agent": {}, "args": {}}, d / "done.pt")
    torch.save({"format": "skillmimic-llc-train/1", "num_obs": 10, "num_actions": n[1], "iteration": 3,
                "agent": {}, "args": {}}, d / "other.pt")
    (d / "clips" / "none").mkdir()
    (d / "held").mkdir()
    (d / "held" / "checkpoint.pt").write_bytes((d / "done.pt").read_bytes())
    torch.save({"format": "skillmimic-llc-train/1", "num_obs": n[0], "num_actions": n[1], "iteration": 3,
                "agent": {}, "args": {"iterations": 3}}, d / "own.pt")
    (d / "empty.pt").write_bytes(b"")
    (d / "cut.pt").write_bytes((d / "done.pt").read_bytes()[:200])
    (d / "binary.yaml").write_bytes(bytes(range(128, 256)))
    (d / "dir.mp4").mkdir()
    policy = SkillPolicy(n[0], n[1], (8,), 1.5, 2.0)
    with torch.no_grad():
        policy.actor[0].weight[0, 0] = float("nan")
    spec = load_spec("full")
    torch.save(policy_file(policy.actor, policy.obs_norm, n[0], n[1], (8,), 1.5, 2.0, hand=spec.hand,
                           model_sha256=spec.sha256), d / "nan.pt")
    (d / "run").mkdir()
    (d / "run" / "checkpoint.pt").write_bytes((d / "done.pt").read_bytes())
    (d / "run" / "policy.pt").write_bytes((d / "nan.pt").read_bytes())
    env = importable_env()

    def run(name):
        return run_python(*_command(CASES[name][0], d), cwd=d, timeout=300, env=env)

    with ThreadPoolExecutor(max(2, min(4, os.cpu_count() or 2))) as pool:
        return d, dict(zip(CASES, pool.map(run, CASES)))


@pytest.mark.parametrize("name", list(CASES))
def test_a_user_error_is_one_line_and_exit_status_2(results, name):
    d, out = results
    r = out[name]
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and CASES[name][1].format(d=d) in lines[0], r.stderr
