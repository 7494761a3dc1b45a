"""Squared distance (mean over the 66 actions, then over states) of a policy file's action means from the teachers'
means on every state of a states file (offline_distill --save-states), e.g. an independent collection (another
--seed) that no fit saw. Also, with --split, the fit's own train/held-out split (seed 0, as offline_distill.fit).

    python results/distill_ident/eval_states.py POLICY.pt STATES.pt [--split]
"""
import json
import sys

import torch

from skillmimic import checkpoint
from skillmimic.envs.observations import skill_obs_dim
from skillmimic.policy import load_policy

policy_path, states_path = sys.argv[1], sys.argv[2]
policy = load_policy(policy_path, "cpu", num_obs=skill_obs_dim)
s = checkpoint.load(states_path, "skillmimic-distill-states/1")
obs, mu = s["obs"].float(), s["mu"].float()
with torch.no_grad():
    d = torch.cat([(policy(obs[i:i + 4096]) - mu[i:i + 4096]).square().mean(-1) for i in range(0, len(obs), 4096)])
out = {"policy": policy_path, "states": states_path, "n": len(obs), "all": float(d.mean())}
if "--split" in sys.argv:  # offline_distill.fit's split: randperm of a generator seeded 0, the first tenth held out
    order = torch.randperm(len(obs), generator=torch.Generator().manual_seed(0))
    held = order[: max(1, len(order) // 10)]
    out.update(train=float(d[order[len(held):]].mean()), held_out=float(d[held].mean()))
print(json.dumps(out))
