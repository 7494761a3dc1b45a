"""Per-clip facts of the pickup clips (raw data and MotionSet's consistent table)."""
import json, sys, torch
from skillmimic.motion import MotionSet, load_clip, BALL_POS, ROOT_POS, BODY_POS, CONTACT
from skillmimic import model as M
ms = MotionSet("data/BallPlay-M/pick_40")
N = M.BODY_NAMES
LW, RW = N.index("L_Middle1"), N.index("R_Middle1")
# success per eval json, both seeds of B
def succ(path):
    d = json.load(open(path)); s = d["skills"][0]
    return {c["clip"]: (c["success"], c["episodes"], c["fell"], c["ball_lost"], c["ball_lost_step_median"], c["fall_step_median"]) for c in s["clips"]}
S0 = succ("results/skills7/B_eval.json"); S1 = succ("results/skills7/B_pickup_eval_seed1_cpu.json")
H0 = succ("results/skills6/H1_eval.json")
rows = []
for m, f in enumerate(ms.files):
    s, L = int(ms.starts[m]), int(ms.lengths[m])
    t = ms.table
    root = t.root_pos[s:s+L]; ball = t.ball_pos[s:s+L]; body = t.body_pos[s:s+L]; c = t.contact[s:s+L]
    raw = load_clip(f)
    d_root = (ball - root).norm(dim=-1)
    held = (root[:, 2] > 0.5) & (d_root < 0.5)
    # reference replayed to 300 steps (last frame held): frames 1..L-1 then last frame
    n_held_clip = int(held[1:].sum())
    n_held_300 = n_held_clip + (300 - (L - 1)) * int(held[-1]) if L - 1 < 300 else int(held[1:301].sum())
    hand = torch.minimum((body[:, LW] - ball).norm(dim=-1), (body[:, RW] - ball).norm(dim=-1))
    cidx = torch.nonzero(c > 0.5).flatten()
    first_c = int(cidx[0]) if len(cidx) else -1
    # ball leaving floor: first frame ball z > 0.2 (radius 0.12)
    up = torch.nonzero(ball[:, 2] > 0.25).flatten(); lift = int(up[0]) if len(up) else -1
    v0 = t.ball_vel[s]
    rows.append(dict(clip=f.name[:-3].replace("001_", "").replace("pickle_pick_", "_"), L=L, first_contact=first_c,
        contact_frac=float(c.mean()), lift=lift, ball_z0=float(ball[0, 2]), raw_ball_zmin=float(raw[:, BALL_POS][:, 2].min()),
        ball_speed0=float(v0.norm()), ball_vz0=float(v0[2]), ball_speed_max=float(t.ball_vel[s:s+L].norm(dim=-1).max()),
        root_z0=float(root[0, 2]), root_zmin=float(root[:, 2].min()), root_zmax=float(root[:, 2].max()),
        root_travel=float((root[-1, :2] - root[0, :2]).norm()), ball_travel0=float((ball[first_c if first_c>=0 else 0, :2]-ball[0,:2]).norm()),
        d_root_end=float(d_root[-1]), ball_z_end=float(ball[-1, 2]), held_clip=n_held_clip, held_300=n_held_300,
        hand_ball_contact_med=float(hand[cidx].median()) if len(cidx) else -1, hand_ball_contact_max=float(hand[cidx].max()) if len(cidx) else -1,
        s0=S0[f.name][0], s1=S1[f.name][0], h1=H0[f.name][0], n=S0[f.name][1]+S1[f.name][1],
        lost0=S0[f.name][4], lost1=S1[f.name][4], fall0=S0[f.name][5], fall1=S1[f.name][5]))
json.dump(rows, open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/clips.json", "w"), indent=1)
keys = list(rows[0].keys())
print(" ".join(keys))
for r in rows:
    print(" ".join(f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]) for k in keys))
