"""The high-level tasks: each picks among skills of the frozen skill policy to reach a goal (see state.py)."""

from __future__ import annotations

from typing import Literal

from skillmimic.tasks.circling import Circling, CirclingConfig
from skillmimic.tasks.heading import Heading, HeadingConfig
from skillmimic.tasks.scoring import Scoring, ScoringConfig
from skillmimic.tasks.throwing import Throwing, ThrowingConfig

TaskName = Literal["heading", "circling", "throwing", "scoring"]

# name -> (task class, its config class); the keys are TaskName's values
TASKS = {
    "heading": (Heading, HeadingConfig),
    "circling": (Circling, CirclingConfig),
    "throwing": (Throwing, ThrowingConfig),
    "scoring": (Scoring, ScoringConfig),
}
