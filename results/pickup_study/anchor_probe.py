"""Does the pickup's teacher still pick the ball up when the reference it sees is laid onto its own position? A
probe for a teacher whose labels on a lagging student's states say "walk on" rather than "catch up" (all-skills
round 12, docs/llc_recipe.md, reading 3).

    python results/pickup_study/anchor_probe.py results/skills10/B3_policy.pt OUT.json [--anchored]

The evaluation of skillmimic.evaluate (the pickup's clips, 64 episodes, seed 0, per clip, plain MuJoCo on the CPU)
with, under --anchored, the reference features the teacher's actor reads (envs/reference_obs.py) changed every
step: the reference bodies' horizontal positions shifted so that the reference's pelvis lies under the humanoid's
own (their heights, the reference's orientation relative to the humanoid's heading, its velocities untouched), and
the reference ball shifted with them only while the data says a hand holds it (before that it is the ball on the
floor, the target). Without --anchored it is the plain evaluation, for comparison. Then
`python results/pickup_study/travel_groups.py "plain=A.json" "anchored=B.json"` groups them.
"""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from skillmimic import model as M  # noqa: E402
from skillmimic import evaluate  # noqa: E402
from skillmimic.envs.imitation import ImitationEnv  # noqa: E402

BODIES = M.NUM_BODIES * 3  # the features' first 159 numbers: the reference bodies relative to the pelvis, (53, 3)
_plain = ImitationEnv.reference_obs


def anchored(self: ImitationEnv) -> torch.Tensor:
    """ImitationEnv.reference_obs with the reference laid onto the humanoid's position (the module docstring)."""
    f = _plain(self).clone()  # (N, 168)
    bodies = f[:, :BODIES].view(-1, M.NUM_BODIES, 3)
    shift = bodies[:, 0, :2].clone()  # (N, 2) the reference pelvis's horizontal offset, heading frame
    bodies[:, :, :2] -= shift[:, None]
    held = f[:, BODIES + 6] > 0.5  # (N,) the reference's contact label
    f[:, BODIES : BODIES + 2] -= shift * held[:, None]
    return f


if __name__ == "__main__":
    policy, out, *flags = sys.argv[1:]
    if flags == ["--anchored"]:
        ImitationEnv.reference_obs = anchored
    args = evaluate.Args(checkpoint=policy, motion_dir="data/BallPlay-M/pick_40", episodes=64, device="cpu",
                         backend="mujoco", per_clip=True, json_out=None)
    results, info = evaluate.evaluate_policy(Path(policy), {}, args, torch.device("cpu"))
    Path(out).write_text(json.dumps({"checkpoint": policy, "anchored": flags == ["--anchored"], "skills": results},
                                    indent=1))
