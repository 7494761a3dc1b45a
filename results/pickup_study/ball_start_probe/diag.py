"""Data vs sim (fitted-6 start): bounces (restitution) and rolling (horizontal deceleration) before first contact."""
import sys, json, numpy as np, mujoco
import fit_start as F
from skillmimic import model as M
R = M.BALL_RADIUS

def sim_traj(S, b, stop):
    m, spec, qpos, qvel = S["m"], S["spec"], S["qpos"], S["qvel"]
    d = mujoco.MjData(m); d.qpos[:], d.qvel[:] = qpos[0], qvel[0]
    bq, bv = spec.ball_qpos, spec.ball_qvel
    d.qpos[bq] = b[0]; d.qvel[bv] = b[1]
    hq, hv = slice(0, bq.start), slice(0, bv.start)
    out = [d.qpos[bq][:3].copy()]
    for f in range(stop):
        for k in range(2):
            a = k / 2; q = (1 - a) * qpos[f] + a * qpos[f + 1]; q[3:7] /= np.linalg.norm(q[3:7])
            d.qpos[hq], d.qvel[hv] = q[hq], ((1 - a) * qvel[f] + a * qvel[f + 1])[hv]
            mujoco.mj_step(m, d)
        out.append(d.qpos[bq][:3].copy())
    return np.array(out)

def describe(x, C):
    z = x[:C + 1, 2]; v = np.diff(x[:C + 1], axis=0) * 60
    grounded = z < R + 0.015
    # bounces: local minima of z with z < R+0.03 and a flight before/after
    b = [i for i in range(2, C - 2) if z[i] <= z[i - 1] and z[i] < z[i + 1] and z[i] < R + 0.03 and (z[max(0, i - 6):i].max() > R + 0.05 or z[i + 1:i + 7].max() > R + 0.05)]
    bounces = []
    for i in b:
        vin, vout = v[max(0, i - 2), 2], v[min(len(v) - 1, i + 1), 2]
        bounces.append((i, round(-vout / vin, 2) if vin < -0.3 else None, round(float(vin), 2)))
    # rolling: longest stretch of grounded frames; horizontal speed at its start and end
    runs, s = [], None
    for i, g in enumerate(grounded):
        if g and s is None: s = i
        if (not g or i == C) and s is not None:
            e = i if g else i - 1
            if e - s >= 10: runs.append((s, e))
            s = None
    rolls = []
    for s, e in runs:
        hs = np.linalg.norm(v[s:e, :2], axis=1)
        k = min(5, (e - s) // 3)
        v0, v1 = hs[:k].mean(), hs[-k:].mean()
        rolls.append((s, e, round(float(v0), 2), round(float(v1), 2), round(float((v0 - v1) / ((e - s - k) / 60)), 2)))
    return bounces, rolls

res = {json.loads(l)["clip"]: json.loads(l) for l in open(sys.argv[1])}
D = "data/BallPlay-M/pick_40/"
for clip, r in res.items():
    S = F.setup(D + clip); spec = S["spec"]; C = r["contact"]
    q0 = S["qpos"][0][spec.ball_qpos]
    xs = sim_traj(S, (q0, np.array(r["v_fit6"])), C)
    xb = sim_traj(S, (q0, S["qvel"][0][spec.ball_qvel]), C)
    e = np.linalg.norm(xs - S["ball"][:C + 1], axis=1)
    print(clip[12:24], "contact", C, "z0=%.3f" % S["ball"][0, 2])
    print("  data: bounces (frame, e, vz_in), rolls (s,e,v0,v1,decel):", *describe(S["ball"], C))
    print("  fit6: ", *describe(xs, C))
    print("  base: ", *describe(xb, C))
    # horizontal vs vertical part of fit6 error at contact and where it passes 15 cm
    d = xs - S["ball"][:C + 1]
    i = np.flatnonzero(e > 0.15); i = i[0] if i.size else C
    print("  fit6 err at %d: horiz %.0f cm vert %.0f cm; at contact: horiz %.0f vert %.0f; along-track %.0f cm" % (
        i, 100 * np.linalg.norm(d[i, :2]), 100 * d[i, 2], 100 * np.linalg.norm(d[C, :2]), 100 * d[C, 2],
        100 * np.dot(d[C, :2], (S["ball"][C, :2] - S["ball"][max(0, C - 10), :2]) / (np.linalg.norm(S["ball"][C, :2] - S["ball"][max(0, C - 10), :2]) + 1e-9))))
