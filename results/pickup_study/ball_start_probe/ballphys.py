"""The model's ball alone (humanoid parked, ball 20 m away): restitution vs impact speed, rolling deceleration."""
import numpy as np, mujoco
from skillmimic import model as M
m = M.load_model("rigid", physics=M.Physics(palm=True))
d = mujoco.MjData(m)
bq = slice(m.jnt_qposadr[m.njnt - 1], m.jnt_qposadr[m.njnt - 1] + 7); bv = slice(m.jnt_dofadr[m.njnt - 1], m.jnt_dofadr[m.njnt - 1] + 6)
def run(z0, v, w=(0, 0, 0), secs=2.0):
    mujoco.mj_resetData(m, d); d.qpos[2] = 5.0  # humanoid up out of the way? keep default
    d.qpos[bq] = [20, 0, z0, 1, 0, 0, 0]; d.qvel[bv] = [*v, *w]
    xs = []
    for _ in range(int(secs * 120)):
        mujoco.mj_step(m, d); xs.append(np.r_[d.qpos[bq][:3], d.qvel[bv]].copy())
    return np.array(xs)
print("restitution (drop, vz_in -> -vz_out/vz_in):")
for vin in (1, 2, 3, 4, 5, 6):
    xs = run(0.13 + 0.02, (0, 0, -vin), secs=0.5)
    vz = xs[:, 5]; i = np.flatnonzero(vz > 0)[0]; j = i + np.argmax(vz[i:i + 20] <= vz[i:i + 20].max())
    print(f"  vin {vin}: e = {vz[i:i+30].max() / vin:.2f}")
print("oblique bounce (vx 2, vz -4, no spin): vx out %.2f, spin out %.1f" % tuple(run(0.15, (2, 0, -4), secs=0.15)[-1][[3, 7]]))
print("rolling (on the floor, rolling spin): horizontal speed over 2 s")
for v in (0.5, 1.0, 1.5):
    xs = run(0.12, (v, 0, 0), (0, v / 0.12, 0), secs=2.0)
    print(f"  v0 {v}: after 0.5 s {xs[59, 3]:.3f}, 1 s {xs[119, 3]:.3f}, 2 s {xs[-1, 3]:.3f}")
xs = run(0.12, (1.0, 0, 0), secs=1.0); print("  sliding start v0 1.0, no spin: after 1 s %.3f (thin shell rolls at 0.6 v0)" % xs[-1, 3])
