"""Fitted (full-window) start: sim vs data horizontal speed every 10 frames, and frames where the ball touches the humanoid."""
import sys, json, numpy as np, mujoco
import fit_start as F
D = "data/BallPlay-M/pick_40/"
for l in open(sys.argv[1]):
    r = json.loads(l); S = F.setup(D + r["clip"]); m, spec, qpos, qvel = S["m"], S["spec"], S["qpos"], S["qvel"]; C = r["contact"]
    d = mujoco.MjData(m); d.qpos[:], d.qvel[:] = qpos[0], qvel[0]
    bq, bv = spec.ball_qpos, spec.ball_qvel; d.qpos[bq] = qpos[0][bq]; d.qvel[bv] = r["v_fit6"]
    hq, hv = slice(0, bq.start), slice(0, bv.start)
    bgeom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ball"); floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    xs, touch = [d.qpos[bq][:3].copy()], []
    for f in range(C):
        for k in range(2):
            a = k / 2; q = (1 - a) * qpos[f] + a * qpos[f + 1]; q[3:7] /= np.linalg.norm(q[3:7])
            d.qpos[hq], d.qvel[hv] = q[hq], ((1 - a) * qvel[f] + a * qvel[f + 1])[hv]
            mujoco.mj_step(m, d)
            for c in d.contact[:d.ncon]:
                if bgeom in (c.geom1, c.geom2) and floor not in (c.geom1, c.geom2) and c.dist < 0:
                    touch.append((f + 1, m.body(m.geom_bodyid[c.geom1 if c.geom2 == bgeom else c.geom2]).name))
        xs.append(d.qpos[bq][:3].copy())
    xs = np.array(xs); x = S["ball"][:C + 1]
    hs = lambda y: np.linalg.norm(np.diff(y, axis=0)[:, :2], axis=1) * 60
    print(r["clip"][12:24], "speed data:", np.round(hs(x)[::10], 2).tolist())
    print("            speed sim: ", np.round(hs(xs)[::10], 2).tolist())
    t = sorted(set(touch)); print("            touches:", t[:3], "...", t[-3:], len(t))
