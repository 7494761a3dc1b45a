"""Per start segment: how training's episodes end. B plays (mean + training's fixed noise exp(-2.9)) in train_llc.py's
default training environment (ball termination 0.5 m, 150 steps after the clip, 300-step episodes) on plain MuJoCo,
one world per start frame (every `every` frames of every pickup clip), each played to its end once.
    python results/pickup_study/probe_starts.py OUT.json --every 20 --part 0 --parts 2"""
import argparse, dataclasses, json, math, sys
import torch
sys.path.insert(0, "/work/main")
import train_llc
from skillmimic.envs.imitation import ImitationEnv
from skillmimic.envs.common import body_on_floor
from skillmimic.envs.observations import skill_obs_dim
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM
from skillmimic.motion import MotionSet
from skillmimic.policy import load_policy
ap = argparse.ArgumentParser(); ap.add_argument("out"); ap.add_argument("--every", type=int, default=20)
ap.add_argument("--part", type=int, default=0); ap.add_argument("--parts", type=int, default=1); ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
policy = load_policy("results/skills7/B_policy.pt", num_obs=skill_obs_dim, reference=REFERENCE_OBS_DIM)
torch.manual_seed(a.seed)
cfg = dataclasses.replace(train_llc.Args().env, backend="mujoco", hand=policy.hand, physics=policy.physics, auto_reset=False)
motions = MotionSet("data/BallPlay-M/pick_40", hand=policy.hand)
starts = [(m, f) for m in range(motions.num_motions) for f in range(0, int(motions.lengths[m]) - 1, a.every)]
starts = starts[a.part::a.parts]
E = len(starts)
env = ImitationEnv(cfg, motions, E, "cpu", seed=a.seed)
mids = torch.tensor([s[0] for s in starts]); fids = torch.tensor([s[1] for s in starts])
env.reset()
env.reset_envs(torch.arange(E), mids, fids)
obs = env.observe()
done = torch.zeros(E, dtype=torch.bool); steps = torch.zeros(E, dtype=torch.long)
term = torch.zeros(E, dtype=torch.bool); ball_end = torch.zeros(E, dtype=torch.bool); body_end = torch.zeros(E, dtype=torch.bool)
ret = torch.zeros(E)
noise = math.exp(-2.9)
for k in range(300):
    with torch.no_grad():
        mean = policy(obs, env.reference_obs())
    obs, r, te, tr, info = env.step(mean + noise * torch.randn_like(mean))
    live = ~done
    ret += r * live; steps += live.long()
    rows = motions.rows(env.motion_ids, env.frame_ids)
    berr = (env.sim.ball_pos_w - motions.table.ball_pos[rows]).norm(dim=-1)
    new = live & (te | tr)
    term |= new & te
    ball_end |= new & te & (berr > cfg.ball_distance)
    body_end |= new & te & body_on_floor(env.sim, env.floor_allowed)
    done |= new
    if bool(done.all()): break
out = [dict(clip=motions.files[m].name, frame=f, length=int(motions.lengths[m]), steps=int(s), terminated=bool(t),
            ball=bool(b), body=bool(bo), ret=float(rr)) for (m, f), s, t, b, bo, rr in zip(starts, steps, term, ball_end, body_end, ret)]
json.dump(out, open(a.out, "w"), indent=0)
print("worlds", E, "terminated", float(term.float().mean()), "ball", float(ball_end.float().mean()), "body", float(body_end.float().mean()))
