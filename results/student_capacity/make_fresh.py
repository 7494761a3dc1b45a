"""A fresh (randomly initialised) 19-skill student of a given width with round 9's Y's observation normaliser, for the
offline capacity probe (README.md here). Run from the repository's root:

    python train_llc.py --hidden 2048 1024 512 --num-envs 8 --iterations 1 --warm-start-steps 0 --device cpu \
        --env.backend mujoco --motion-dir data/BallPlay-M --env.physics.palm --env.loops.labels 13 --run-dir RUN
    python results/student_capacity/make_fresh.py RUN/policy.pt OUT.pt

offline_distill keeps its --init-from file's observation normaliser as it is; a one-iteration run's is untrained, so
Y's (the same 868 observations) is put in its place.
"""
import sys

import torch

fresh, out = sys.argv[1:3]
policy = torch.load(fresh, weights_only=True, map_location="cpu")
y = torch.load("results/skills9/Y_policy.pt", weights_only=True, map_location="cpu")
assert policy["num_obs"] == y["num_obs"], (policy["num_obs"], y["num_obs"])
policy["obs_norm"] = y["obs_norm"]
torch.save(policy, out)
