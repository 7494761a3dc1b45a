"""skillmimic.evaluate's loop for the pickup, with every episode's timing: fall step, first ball-lost step (0.5 m
from the reference's, on the clip's frames), the first step a hand touches the ball, held steps, success."""
import json, sys, torch
sys.path.insert(0, "/work/main")
from skillmimic import evaluate as EV
from skillmimic.envs.imitation import ImitationEnv
from skillmimic.envs.observations import skill_obs_dim
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM
from skillmimic.motion import MotionSet
from skillmimic.policy import load_policy
seed, E, H, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
policy = load_policy("results/skills7/B_policy.pt", num_obs=skill_obs_dim, reference=REFERENCE_OBS_DIM)
motions = MotionSet("data/BallPlay-M/pick_40", hand=policy.hand)
args = EV.Args(checkpoint="", motion_dir="", episodes=E, horizon=H, device="cpu", backend="mujoco", seed=seed)
env = ImitationEnv(EV.evaluation_config(policy, H, "mujoco"), motions, E, torch.device("cpu"), seed=seed)
gen = torch.Generator().manual_seed(seed)
noise = args.init_noise * torch.randn(E, env.spec.num_dofs, generator=gen)
ids = EV.clips_in_turn(motions, 1, E)
obs = EV.start_at_first_frames(env, ids, noise)
traj = {k: [] for k in EV.TRAJECTORY}; refb = []
alive = torch.ones(E, dtype=torch.bool)
with torch.no_grad():
    for _ in range(H):
        obs, _, te, _, _ = env.step(policy(obs, env.reference_obs()))
        alive &= ~te
        EV.record(traj, env.sim, alive)
        refb.append(motions.table.ball_pos[motions.rows(env.motion_ids, env.frame_ids)])
t = {k: torch.stack(v) for k, v in traj.items()}; rb = torch.stack(refb)
ok = EV._picked_up(t, None)
n_ref = motions.lengths[ids] - 1
in_ref = torch.arange(H)[:, None] < n_ref[None]
off = ((t["ball"] - rb).norm(dim=-1) > 0.5) & in_ref & t["alive"]
held = ((t["root"][..., 2] > 0.5) & ((t["ball"] - t["root"]).norm(dim=-1) < 0.5) & t["alive"]).sum(0)
res = []
for e in range(E):
    fell = not bool(t["alive"][-1, e]); fall = int(t["alive"][:, e].sum()) + 1 if fell else None
    lost = int(off[:, e].float().argmax()) + 1 if bool(off[:, e].any()) else None
    touch = torch.nonzero(t["hand"][:, e] & t["alive"][:, e]).flatten()
    res.append(dict(clip=motions.files[int(ids[e])].name, success=bool(ok[e]), fall=fall, lost=lost,
                    first_touch=int(touch[0]) + 1 if len(touch) else None, held=int(held[e])))
json.dump(res, open(out, "w"), indent=0)
print("success", float(ok.float().mean()))
