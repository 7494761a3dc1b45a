"""Every command turns a user's mistake into one line on stderr, `error: ...` naming the flag or file and the
problem, and exit status 2, with no traceback and before anything is built. The commands run as a user runs
them (subprocesses, from another folder), a few at a time: each takes about the time of its imports."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from paths import DATA, ROOT
from skillmimic.envs.imitation import ImitationEnv
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
    "YAML num_envs: four": ("train_llc.py --config {d}/four.yaml",
                            "{d}/four.yaml: num_envs: expected an integer or null, got 'four'"),
    "YAML hidden: 64": ("train_hlc.py --config {d}/hidden.yaml", "{d}/hidden.yaml: hidden: expected a list"),
    "resume of a finished run": ("train_llc.py --resume {d}/done.pt --iterations 3",
                                 "{d}/done.pt: already at iteration 3"),
    "resume of another model": ("train_llc.py --resume {d}/other.pt",
                                f"{{d}}/other.pt: made for num_obs=10, this model has num_obs={ImitationEnv.num_obs}"),
    "resume of a policy": ("train_llc.py --resume {d}/nan.pt",
                           "{d}/nan.pt: holds a 'skillmimic-llc-policy/1', expected a 'skillmimic-llc-train/1'"),
    "resume of a skill policy as a high-level run": ("train_hlc.py --resume {d}/nan.pt",
                                                     "expected a 'skillmimic-hlc-train/1'"),
    "a training checkpoint as the skill policy": ("train_hlc.py --llc {d}/done.pt --device cpu",
                                                  "--llc: {d}/done.pt: holds a 'skillmimic-llc-train/1', expected a "
                                                  "'skillmimic-llc-policy/1'"),
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
    "video of a missing folder": ("-m skillmimic.video {d}/none {d}/out.mp4", "{d}/none: no such folder of frames"),
    "play no humanoids": ("play.py --num-envs 0", "--num-envs 0: must be at least 1"),
    "play a missing policy": (f"play.py --headless --steps 1 --checkpoint {{d}}/none.pt --motion-dir {LAYUP}",
                              "{d}/none.pt: no such checkpoint file (train one with train_llc.py, or use "
                              "--play-dataset)"),
}
if not torch.cuda.is_available():
    CASES["a GPU where there is none"] = ("train_llc.py --device cuda", "--device cuda: torch sees no GPU here")


def _command(line: str, d) -> list[str]:
    args = line.format(d=d).split()
    return [sys.executable, *(args if args[0] == "-m" else [str(ROOT / args[0]), *args[1:]])]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("errors")
    (d / "file").write_text("not a folder")
    (d / "clips").mkdir()
    torch.save(torch.zeros(3, 5), d / "clips" / "031_bad.pt")
    (d / "four.yaml").write_text("num_envs: four\n")
    (d / "hidden.yaml").write_text("hidden: 64\n")
    n = ImitationEnv.num_obs, load_spec("full").num_dofs  # full-hand files (a file without a hand is one)
    torch.save({"format": "skillmimic-llc-train/1", "num_obs": n[0], "num_actions": n[1], "iteration": 3,
                "agent": {}, "args": {}}, d / "done.pt")
    torch.save({"format": "skillmimic-llc-train/1", "num_obs": 10, "num_actions": n[1], "iteration": 3,
                "agent": {}, "args": {}}, d / "other.pt")
    (d / "clips" / "none").mkdir()
    (d / "held").mkdir()
    (d / "held" / "checkpoint.pt").write_bytes((d / "done.pt").read_bytes())
    policy = SkillPolicy(n[0], n[1], (8,), 1.5, 2.0)
    with torch.no_grad():
        policy.actor[0].weight[0, 0] = float("nan")
    spec = load_spec("full")
    torch.save(policy_file(policy.actor, policy.obs_norm, n[0], n[1], (8,), 1.5, 2.0, hand=spec.hand,
                           model_sha256=spec.sha256), d / "nan.pt")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))

    def run(name):
        return subprocess.run(_command(CASES[name][0], d), cwd=d, capture_output=True, text=True, timeout=300,
                              env=env)

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
