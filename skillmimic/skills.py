"""Skill labels and the skill condition: a one-hot of 64 slots, slot = the clip's three-digit label.

The label of a clip is the first three characters of its file name (`031_...` is a layup, slot 31). Slots are
fixed by the label itself, not by which clips are loaded, so one policy's condition means the same skill whatever
motion set it was trained or run with. Labels 064 and above do not fit and are rejected.
"""

from __future__ import annotations

import torch

NUM_SLOTS = 64

# The labels the tasks and the evaluation name (the clips' three-digit prefixes).
PICKUP = 1
SHOT, SHOT_2, SHOT_3 = 5, 6, 7
DRIBBLE_LEFT, DRIBBLE_RIGHT, DRIBBLE_FORWARD = 11, 12, 13
LAYUP, TURNAROUND_LAYUP = 31, 34
SHOTS = (SHOT, SHOT_2, SHOT_3)
LAYUPS = (LAYUP, TURNAROUND_LAYUP)
DRIBBLES = (DRIBBLE_LEFT, DRIBBLE_RIGHT, DRIBBLE_FORWARD)

# The labels of the BallPlay-M subset and the paper's names for them.
SKILL_NAMES: dict[int, str] = {
    1: "pickup",
    2: "rebound",
    3: "catch",
    4: "pass",
    5: "shot (style 1)",
    6: "shot (style 2)",
    7: "shot (style 3)",
    11: "dribble left",
    12: "dribble right",
    13: "dribble forward",
    23: "turn hook",
    31: "layup",
    34: "turnaround layup",
    40: "right turn to left hand",
    41: "back",
    42: "turn",
    43: "leg turn",
    44: "between the legs (style 1)",
    45: "between the legs (style 2)",
}


# SkillMimic's success rates (%) for the skills its paper evaluates (arXiv 2408.15270, the skill table; issue 23
# takes them as the mark): pickup, dribble forward, layup and shot.
PAPER_SUCCESS: dict[int, float] = {PICKUP: 86.7, DRIBBLE_FORWARD: 79.6, LAYUP: 99.1, SHOT: 97.9}


def skill_name(label: int) -> str:
    return SKILL_NAMES.get(int(label), f"skill {int(label):03d}")


def check_labels(labels: torch.Tensor) -> None:
    bad = labels[(labels < 0) | (labels >= NUM_SLOTS)]
    if bad.numel():
        raise ValueError(f"skill label {int(bad[0]):03d} does not fit the {NUM_SLOTS}-slot skill condition")


def outside_slots(labels) -> list[int]:
    """The labels of an iterable of ints that do not fit the NUM_SLOTS-slot skill condition (a flag's check)."""
    return [lab for lab in labels if not 0 <= lab < NUM_SLOTS]


def one_hot(labels: torch.Tensor) -> torch.Tensor:
    """Skill condition of each label. (B,) long -> (B, 64) float."""
    return torch.nn.functional.one_hot(labels, NUM_SLOTS).float()
