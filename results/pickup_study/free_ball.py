"""Free ball vs recorded ball: kinematic humanoid (tools/ball_replay.replay), the ball's simulated z vs the data's."""
import sys, mujoco, numpy as np, torch
sys.path.insert(0, "tools")
from ball_replay import replay
from skillmimic import model as M
from skillmimic.motion import MotionSet
m = M.load_model("rigid", physics=M.Physics(palm=True))
for spec in sys.argv[1:]:
    clip, start, stop = spec.split(":"); start, stop = int(start), int(stop)
    ms = MotionSet(f"data/BallPlay-M/pick_40/001_{clip}.pt", hand="rigid")
    t = ms.table
    d = mujoco.MjData(m)
    qpos0, qvel0 = ms.state(torch.zeros(1, dtype=torch.long), torch.tensor([start]))
    # re-run replay while recording the ball position
    err = replay(ms, m, start, stop)
    print(clip, "from", start, "ball err (cm) every 3 frames:", " ".join(f"{100*e:.0f}" for e in err[::3]))
