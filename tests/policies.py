"""A small skill-policy file written by hand, for the tests of what reads one (--init-from's seating)."""

import sys

import torch

from paths import ROOT

sys.path.insert(0, str(ROOT))
import train_llc  # noqa: E402
from skillmimic import checkpoint, skills  # noqa: E402
from skillmimic import model as M  # noqa: E402
from skillmimic.envs.observations import OBS_DIM, SKILL_OBS_DIM  # noqa: E402
from skillmimic.policy import policy_file  # noqa: E402


def write_layup_policy(path) -> "train_llc.Agent":
    """A skill policy of the rigid hand observing no past (16 wide), as a run on the layup (label 31) alone leaves
    it: the state inputs varied (at scales far from 1), the skill inputs constant, a critic that sees what the actor
    sees and a value normaliser. Written to `path`; returns the agent it holds."""
    spec = M.load_spec("rigid")
    torch.manual_seed(0)
    agent = train_llc.Agent(SKILL_OBS_DIM, spec.num_dofs, (16,), -2.9)
    states = 3.0 * torch.randn(512, OBS_DIM) + torch.linspace(-2, 2, OBS_DIM)
    agent.obs_norm.update(torch.cat((states, skills.one_hot(torch.full((512,), 31))), -1))
    agent.value_norm.update(50.0 + 10.0 * torch.randn(512))
    checkpoint.save_atomic(policy_file(agent.actor, agent.obs_norm, SKILL_OBS_DIM, spec.num_dofs, (16,), 1.5, 2.0,
                                       hand="rigid", model_sha256=spec.sha256, critic=agent.critic.state_dict(),
                                       value_norm=agent.value_norm.state_dict(), skill_labels=[31]), path)
    return agent
