"""Share of the observation's entries that a policy's normaliser clips (|x - mean| / std > 5, normalizer.py) on the
states of a states file, and the share of states with at least one entry clipped: a clipped input is information
the network never sees. Use the states of a collection without history.

    python results/distill_ident/clip_share.py POLICY.pt STATES.pt
"""
import json
import sys

import torch

from skillmimic import checkpoint
from skillmimic.envs.reference_obs import REFERENCE_OBS_DIM
from skillmimic.policy import load_policy

policy = load_policy(sys.argv[1], "cpu", reference=REFERENCE_OBS_DIM)
obs = checkpoint.load(sys.argv[2], "skillmimic-distill-states/1")["obs"].float()[:, :policy.num_obs]
z = (obs - policy.obs_norm.mean) / policy.obs_norm.std
big = z.abs() > policy.obs_norm.clip
print(json.dumps({"policy": sys.argv[1], "states": sys.argv[2], "entries_clipped": float(big.float().mean()),
                  "states_with_a_clip": float(big.any(-1).float().mean()),
                  "columns_ever_clipped": int(big.any(0).sum()), "columns": obs.shape[1]}))
