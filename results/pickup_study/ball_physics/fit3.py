"""Does the ball-floor physics (Physics.ball_restitution, ball_rolling) make a fitted frame-0 ball velocity
extrapolate? For each clip and physics: the recorded start (as tools/ball_replay.py) and a 3-parameter fit of the
frame-0 linear velocity (no spin; 2 starts x 200 rollouts of Nelder-Mead) on frames 0..min(C, 60) and on 0..C, C = first contact label; metrics over 1..C.
Same rollout as results/pickup_study/ball_start_probe/fit_start.py (humanoid kinematic, ball free), one JSON line a
clip and physics.    python fit3.py CLIP.pt ...   (OMP_NUM_THREADS=1, PYTHONPATH=repository root)"""
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ball_start_probe"))
import fit_start as F  # noqa: E402
from skillmimic import model as M  # noqa: E402

PHYSICS = {"default": M.Physics(palm=True), "e0.82 r0.4": M.Physics(palm=True, ball_restitution=0.82, ball_rolling=0.4)}


def fit3(S, q0, v0, window):
    """Nelder-Mead from the recorded (one-sided difference) and the 2nd-order difference velocity, 200 rollouts
    each; the better."""
    def obj(p):
        return F.rollout(S, (q0, np.r_[p, 0, 0, 0]), window).mean()
    x = S["ball"]
    best = None
    for init in (v0[:3], (-3 * x[0] + 4 * x[1] - x[2]) * F.FPS / 2):
        r = minimize(obj, init, method="Nelder-Mead", options=dict(maxfev=200, xatol=1e-3, fatol=1e-4,
                     initial_simplex=np.vstack([init] + [init + 0.3 * e for e in np.eye(3)])))
        if best is None or r.fun < best.fun:
            best = r
    return best.x


for path in sys.argv[1:]:
    for name, physics in PHYSICS.items():
        S = F.setup(path, physics=physics)
        C, _ = F.first_contact(S["contact"])
        q0, v0 = S["qpos"][0][S["spec"].ball_qpos].copy(), S["qvel"][0][S["spec"].ball_qvel].copy()
        res = {"clip": Path(path).stem[-7:].replace("ick", "008"), "physics": name, "C": C, "recorded": F.metrics(F.rollout(S, (q0, v0), C))}
        for label, w in (("fit60", min(C, 60)), ("fitC", C)):
            v = fit3(S, q0, v0, w)
            res[label] = {**F.metrics(F.rollout(S, (q0, np.r_[v, 0, 0, 0]), C)), "v": v.round(2).tolist()}
        print(json.dumps(res), flush=True)
