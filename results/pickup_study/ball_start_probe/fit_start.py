"""Fit the frame-0 ball velocity (3) / velocity+spin (6) so the free ball follows the recording until first contact.
Same code path as tools/ball_replay.py: rigid hand, Physics(palm=True) (FIBA 0.6 kg), humanoid set kinematically
to the reference at every physics step (interpolated), ball simulated."""
import sys, json, time
import numpy as np, torch, mujoco
from scipy.optimize import minimize
from skillmimic import model as M
from skillmimic.motion import MotionSet, FPS

def setup(path, hand="rigid", physics=M.Physics(palm=True)):
    ms = MotionSet(path, hand=hand)
    ms.files = ms.files[:1]
    T = int(ms.lengths[0]); spec = ms.spec
    ids = torch.zeros(T, dtype=torch.long)
    qpos, qvel = (x.double().numpy() for x in ms.state(ids, torch.arange(T)))
    ball = ms.table.ball_pos[:T].double().numpy()
    contact = ms.table.contact[:T].numpy() > 0.5
    m = M.load_model(hand, physics=physics)
    return dict(m=m, spec=spec, qpos=qpos, qvel=qvel, ball=ball, contact=contact, T=T)

def first_contact(c):
    on = np.flatnonzero(c)
    if on.size == 0: return len(c) - 1, "none"
    if on[0] > 0: return int(on[0]), "first"
    off = np.flatnonzero(~c)  # ball in hand at frame 0: the re-catch after the label drops
    if off.size == 0: return len(c) - 1, "always"
    re = np.flatnonzero(c[off[0]:])
    return (int(off[0] + re[0]) if re.size else len(c) - 1), f"recatch(off@{off[0]})"

def rollout(S, bstate, stop):
    """bstate: (pos3, quat4, vel6). errors at frames 1..stop (index f-1)."""
    m, spec, qpos, qvel, ball = S["m"], S["spec"], S["qpos"], S["qvel"], S["ball"]
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = qpos[0], qvel[0]
    bq, bv = spec.ball_qpos, spec.ball_qvel
    d.qpos[bq] = bstate[0]; d.qvel[bv] = bstate[1]
    hq, hv = slice(0, bq.start), slice(0, bv.start)
    n = max(1, round((1 / 60) / m.opt.timestep))
    err = np.empty(stop)
    for f in range(stop):
        qa, qb, va, vb = qpos[f], qpos[f + 1], qvel[f], qvel[f + 1]
        for k in range(n):
            a = k / n
            q = (1 - a) * qa + a * qb
            q[3:7] /= np.linalg.norm(q[3:7])
            d.qpos[hq], d.qvel[hv] = q[hq], ((1 - a) * va + a * vb)[hv]
            mujoco.mj_step(m, d)
        err[f] = np.linalg.norm(d.qpos[bq][:3] - ball[f + 1])
    return err

def metrics(err):
    def first(th):
        i = np.flatnonzero(err > th); return int(i[0] + 1) if i.size else None
    return dict(gt15=first(0.15), gt50=first(0.5), mean_cm=round(100 * err.mean(), 1), max_cm=round(100 * err.max(), 1))

def main(path, maxfev=300):
    S = setup(path); spec = S["spec"]
    C, kind = first_contact(S["contact"]); import os; W = C if os.environ.get("FULLWIN") else min(C, 60)
    q0 = S["qpos"][0][spec.ball_qpos].copy(); v0 = S["qvel"][0][spec.ball_qvel].copy()
    x = S["ball"]
    v2 = (-3 * x[0] + 4 * x[1] - x[2]) * FPS / 2
    res = {"clip": path.split("/")[-1], "contact": C, "contact_kind": kind, "fit_window": W,
           "v_base": v0[:3].round(2).tolist(), "v_2nd": v2.round(2).tolist()}
    t0 = time.time()
    err = rollout(S, (q0, v0), C); res["base"] = metrics(err)
    vv = v0.copy(); vv[:3] = v2
    res["2nd"] = metrics(rollout(S, (q0, vv), C))
    nfev = [0]
    def obj(p):
        v = np.zeros(6); v[:len(p)] = p if len(p) == 6 else p
        if len(p) == 3: v[3:] = 0
        nfev[0] += 1
        return rollout(S, (q0, v), W).mean()
    best3 = None
    for init in (v0[:3], v2):
        r = minimize(obj, init, method="Nelder-Mead", options=dict(maxfev=maxfev // 2, xatol=1e-3, fatol=1e-4,
                     initial_simplex=np.vstack([init] + [init + 0.3 * e for e in np.eye(3)])))
        if best3 is None or r.fun < best3.fun: best3 = r
    v3 = np.r_[best3.x, 0, 0, 0]
    res["v_fit3"] = best3.x.round(2).tolist(); res["fit3"] = metrics(rollout(S, (q0, v3), C)); res["fit3_obj_cm"] = round(100 * best3.fun, 1)
    # 6 params: start from fit3, spin init: rolling-consistent spin w = z x v / r, and zero
    best6 = None
    for w0 in (np.zeros(3), np.cross([0, 0, 1], best3.x) / M.BALL_RADIUS):
        init = np.r_[best3.x, w0]
        simplex = np.vstack([init] + [init + np.r_[0.3 * np.ones(3), 5 * np.ones(3)] * e for e in np.eye(6)])
        r = minimize(obj, init, method="Nelder-Mead", options=dict(maxfev=maxfev, xatol=1e-3, fatol=1e-4, initial_simplex=simplex))
        if best6 is None or r.fun < best6.fun: best6 = r
    res["v_fit6"] = best6.x.round(2).tolist(); res["fit6"] = metrics(rollout(S, (q0, best6.x), C)); res["fit6_obj_cm"] = round(100 * best6.fun, 1)
    res["nfev"] = nfev[0]; res["secs"] = round(time.time() - t0, 1)
    # error curve of fit6 every 5 frames (cm) for diagnosis
    e6 = rollout(S, (q0, best6.x), C)
    res["fit6_curve"] = [round(100 * e6[i], 0) for i in range(4, C, 5)]
    res["base_curve"] = [round(100 * err[i], 0) for i in range(4, C, 5)]
    print(json.dumps(res), flush=True)
    return res

if __name__ == "__main__":
    maxfev = int(sys.argv[1])
    for p in sys.argv[2:]:
        main(p, maxfev)
