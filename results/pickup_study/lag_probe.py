"""How a pickup policy's episodes go on the clips where the human walks to the ball: when the bodies' mean distance
to the reference first exceeds training's drift termination (`--env.fall-distance`: 0.5 m, and 1.0 m, round 13's
YF), and whether a hand ever touches the ball, before or after (all-skills round 12: the 19-skill student never
picks up such a ball).

    python results/pickup_study/lag_probe.py results/skills12/YH_policy.pt results/skills10/B3_policy.pt

The evaluation's episodes (skillmimic.evaluate: each clip's first frame, its hinge noise, 300 steps, no drift
termination, plain MuJoCo on the CPU, seed 0), 4 episodes per pickup clip, grouped as travel_groups.py groups them.
Per policy, group and threshold D (0.5, 1.0 m): the episodes; the share whose drift passes D before any fall
(training would have ended them there) and the median step it does; the share where a hand touches the ball at
all; of the episodes past D, the share where a hand touches the ball only after that step (what training's early
end never lets it reach).
"""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from skillmimic.envs.imitation import ImitationEnv, load_motions  # noqa: E402
from skillmimic.envs.observations import skill_obs_dim  # noqa: E402
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM  # noqa: E402
from skillmimic.evaluate import evaluation_config, start_at_first_frames  # noqa: E402
from skillmimic.policy import load_policy  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from travel_groups import CLIPS, GROUPS, clip_key, group  # noqa: E402

DRIFTS = (0.5, 1.0)
PER_CLIP = 4


@torch.no_grad()
def probe(path: str) -> dict[str, dict[str, float]]:
    device = torch.device("cpu")
    policy = load_policy(path, device, num_obs=skill_obs_dim, reference=REFERENCE_OBS_DIM)
    cfg = evaluation_config(policy, 300, "mujoco")
    motions = load_motions("data/BallPlay-M/pick_40", cfg, device)
    motion_ids = torch.arange(len(motions.files), device=device).repeat_interleave(PER_CLIP)
    env = ImitationEnv(cfg, motions, len(motion_ids), device, seed=0)
    gen = torch.Generator(device=device).manual_seed(0)
    noise = 0.02 * torch.randn(len(motion_ids), env.spec.num_dofs, generator=gen)
    obs = start_at_first_frames(env, motion_ids, noise)
    alive = torch.ones(len(motion_ids), dtype=torch.bool)
    drift, touch, up = [], [], []
    for _ in range(300):
        obs, _, terminated, _, _ = env.step(policy(obs, env.reference_obs() if policy.num_reference else None))
        alive &= ~terminated
        rows = motions.rows(env.motion_ids, env.frame_ids)
        drift.append((env.sim.body_pos_w - motions.table.body_pos[rows]).norm(dim=-1).mean(-1))  # (E,)
        touch.append(env.sim.hand_ball_contact.any(-1) & alive)
        up.append(alive.clone())
    drift_t, touch_t, up_t = torch.stack(drift), torch.stack(touch), torch.stack(up)  # (T, E)
    touched = touch_t.any(0)
    groups = [group(CLIPS[clip_key(motions.files[m].name)]) for m in motion_ids.tolist()]
    out: dict[str, dict[str, float]] = {}
    for limit in DRIFTS:
        past = (drift_t > limit) & up_t  # before a fall (which ends a training episode too)
        ever_past, first_past = past.any(0), past.float().argmax(0)
        after = torch.zeros_like(touched)
        for e in range(len(motion_ids)):
            if ever_past[e]:
                after[e] = (~touch_t[: first_past[e] + 1, e].any()) & touch_t[first_past[e] + 1 :, e].any()
        for g in GROUPS:
            on = torch.tensor([x == g for x in groups])
            if not on.any():
                continue
            n, p = int(on.sum()), ever_past & on
            out.setdefault(g, {"episodes": n, "touched": float((touched & on).sum()) / n})
            out[g][f"past_{limit}m"] = float(p.sum()) / n
            out[g][f"past_{limit}m_step_median"] = float(first_past[p].float().median() + 1) if p.any() else None
            out[g][f"touched_only_after_{limit}m"] = float((after & p).sum()) / max(int(p.sum()), 1)
    return out


if __name__ == "__main__":
    results = {path: probe(path) for path in sys.argv[1:]}
    print(json.dumps(results, indent=1))
