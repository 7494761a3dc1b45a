"""How a training episode's skill label is drawn: uniformly per episode (the default), or so that the labels share
the samples equally, in proportion to how often their episodes fall, or in shares the user gives.

Why: with labels drawn uniformly per episode, a label's share of the samples is proportional to the mean length of
its episodes. On all 19 skills (results/skills1, 4 GPUs) the shots and the pass learn and play long episodes, while
the dribbles, the pickup and the layups fall within about 20-50 steps nearly every time: the skills that fail get
the fewest samples, the opposite of what they need. Not measured yet.

The modes (LabelSampling.mode), L the run's labels:
- `episodes`: each label with probability 1 / L per episode, as always (one integer drawn per start).
- `samples`: each label the same share of the samples: label l drawn with probability proportional to
  1 / mean_len_l, the decayed mean length (control steps) of l's episodes.
- `falls`: label l's target share of the samples is floor / L + (1 - floor) * fall_l / sum(fall), fall_l the
  decayed share of l's episodes that fell (terminated, not truncated), counted with adaptive starts' prior
  ((fell + 0.5) / (ended + 1): a label with no episodes yet falls half the time); drawn with probability
  proportional to target_l / mean_len_l. A floor of 1 is `samples`; every label keeps at least floor / L of the
  samples, so the skills already learned are still practised.
- `weights`: label l's target share of the samples is proportional to its weight in `weights` ("LLL=W": skill
  label LLL, weight W >= 0; a label not named weighs 1), drawn as in `falls`. Why: a student distilled on all 19
  skills (train_llc.py --teachers) learns a skill at the pace of its share of the samples; round 7's 19-skill
  student, whose three skills that need a teacher held a few percent of them, moved their distances 19 times slower
  than a student of the dribble alone (docs/llc_recipe.md, "All skills, round 7"): the weights give those skills
  the samples while the 16 it already plays are kept in practice.

Statistics (LabelCounts): per label, decayed counts of the episodes that ended, of those that fell and of the control
steps they played, filed under the label the episode started with and decayed at every control step by the
environment's `adaptive_decay`, as the adaptive starts' segment counts are (whether adaptive starts are on or not).
Switch episodes (envs/switch_starts.py) are left out, as they are of those counts. A label's mean length counts one
more episode of the mean length over all labels, so that before its episodes end (or any does) the labels count as
equally long. The counts see an episode when it ends: a label whose episodes last long is counted late, which the
prior covers at the start. Kept on the environment's device; drawing and counting make no host sync.

Like the ball noise and the switch starts it acts on the starts the environment draws itself (training's), never
on starts given to it (the evaluation's, play.py's, the warm start's demonstration); the evaluation's EnvConfig keeps
the default and a policy file does not record it. With `episodes` nothing is counted and the random stream is
today's.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from skillmimic.errors import UserError

Mode = Literal["episodes", "samples", "falls", "weights"]
MODES = ("episodes", "samples", "falls", "weights")


@dataclasses.dataclass
class LabelSampling:
    mode: Mode = "episodes"
    """How each training episode's skill label is drawn (envs/label_sampling.py): 'episodes' uniform per episode
    (each label's share of the samples then follows its episodes' length); 'samples' so that every label gets the
    same share of the samples; 'falls' so that a label's share of the samples grows with how often its episodes
    fall, above `floor`. No effect on a run of one label."""
    floor: float = 0.2
    """With mode 'falls': the share of the samples spread equally over the labels (each keeps at least floor / L);
    the rest goes in proportion to the labels' fall rates. 1 is mode 'samples'."""
    weights: tuple[str, ...] = ()
    """With mode 'weights': LLL=W entries (skill label LLL, e.g. 013=6): each label's share of the samples is
    proportional to its weight; a label not named weighs 1."""

    def check(self) -> None:
        """Refuse values that cannot work, in one line naming the flag."""
        if self.mode not in MODES:
            raise UserError(f"--env.label-sampling.mode {self.mode!r}: must be one of {', '.join(MODES)}")
        if not 0.0 <= self.floor <= 1.0:  # NaN fails both
            raise UserError(f"--env.label-sampling.floor {self.floor}: must be within [0, 1]")
        if self.weights and self.mode != "weights":
            raise UserError(f"--env.label-sampling.weights: given with mode {self.mode!r}; pass "
                            "--env.label-sampling.mode weights")
        self.parsed_weights()

    def parsed_weights(self) -> dict[int, float]:
        """The `weights` entries as {label: weight}; an entry that is not LLL=W with W finite and >= 0, or a label
        named twice, is refused in one line naming the flag."""
        out: dict[int, float] = {}
        for entry in self.weights:
            label, sep, weight = entry.partition("=")
            try:
                lab, w = int(label), float(weight)
            except ValueError:
                lab, w = -1, -1.0
            if not sep or lab < 0 or not 0.0 <= w < float("inf"):
                raise UserError(f"--env.label-sampling.weights {entry!r}: must be LABEL=WEIGHT, a skill label and a "
                                "weight >= 0 (e.g. 013=6)")
            if lab in out:
                raise UserError(f"--env.label-sampling.weights: label {lab:03d} named twice")
            out[lab] = w
        return out

    def label_weights(self, labels: list[int]) -> torch.Tensor:
        """(L,) the weights of the run's `labels` (1 where not named); a named label the run does not train, or
        weights that leave every label at 0, are refused in one line naming the flag."""
        given = self.parsed_weights()
        extra = sorted(set(given) - set(labels))
        if extra:
            raise UserError(f"--env.label-sampling.weights: {', '.join(f'{lab:03d}' for lab in extra)} not among this "
                            f"run's skills ({', '.join(f'{lab:03d}' for lab in labels)})")
        w = torch.tensor([given.get(lab, 1.0) for lab in labels])
        if self.mode == "weights" and not w.sum() > 0:
            raise UserError("--env.label-sampling.weights: every label weighs 0")
        return w


def label_probabilities(mode: str, floor: float, ended: torch.Tensor, fell: torch.Tensor,
                        steps: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Each label's probability of being drawn for a new episode (see the module docstring), from its decayed
    counts: ended, fell and steps (L,) each (episodes that ended, those that fell, the control steps they played),
    and for mode 'weights' the labels' weights (L,). -> (L,), summing to 1."""
    L = ended.shape[0]
    if mode == "episodes":
        return torch.full_like(ended, 1.0 / L)
    overall = steps.sum() / ended.sum().clamp(min=1e-6)  # the mean length over all labels (0 before any end)
    mean_len = ((steps + overall) / (ended + 1.0)).clamp(min=1.0)  # (L,) control steps, one prior episode each
    if mode == "samples":
        target = torch.full_like(ended, 1.0 / L)  # (L,) each label's share of the samples
    elif mode == "weights":
        target = weights.to(ended) / weights.sum()
    else:
        fall_rate = (fell + 0.5) / (ended + 1.0)  # (L,)
        target = floor / L + (1.0 - floor) * fall_rate / fall_rate.sum()
    w = target / mean_len  # a label's share of the samples is its draw probability times its mean length
    return w / w.sum()


class LabelCounts:
    """Per label, decayed counts of the episodes that ended (`ended`), of those that fell (`fell`) and of the control
    steps they played (`steps`): (num_labels,) each, on `device`."""

    NAMES = ("ended", "fell", "steps")

    def __init__(self, num_labels: int, device: torch.device, weights: torch.Tensor | None = None):
        self.weights = None if weights is None else weights.to(device)  # (num_labels,) mode 'weights''s
        self.ended = torch.zeros(num_labels, device=device)
        self.fell = torch.zeros(num_labels, device=device)
        self.steps = torch.zeros(num_labels, device=device)

    def add(self, label: torch.Tensor, ended: torch.Tensor, fell: torch.Tensor, steps: torch.Tensor,
            decay: float) -> None:
        """Decay the counts by `decay`, then count the episodes that ended this step: label (N,) each world's label
        index, ended and fell (N,) bool, steps (N,) the control steps each world's episode has played."""
        for name, v in zip(self.NAMES, (ended, fell, steps * ended)):
            getattr(self, name).mul_(decay).index_add_(0, label, v.float())

    def probabilities(self, cfg: LabelSampling) -> torch.Tensor:
        """(L,) each label's draw probability under cfg (label_probabilities)."""
        return label_probabilities(cfg.mode, cfg.floor, self.ended, self.fell, self.steps, self.weights)

    def fall_rate(self) -> torch.Tensor:
        """(L,) each label's decayed share of episodes that fell, with the prior (a label with none: 0.5)."""
        return (self.fell + 0.5) / (self.ended + 1.0)

    def state_dict(self) -> dict:
        return {name: getattr(self, name).cpu().clone() for name in self.NAMES}

    def load_state_dict(self, state: dict) -> None:
        for name in self.NAMES:
            getattr(self, name).copy_(state[name])
