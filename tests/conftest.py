"""Shared fixtures: motion sets loaded once per session."""

import os

import pytest

# Render offscreen (EGL) when there is no display, whichever test module imports MuJoCo first.
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

from paths import DATA


@pytest.fixture(scope="session")
def layup_motions():
    from skillmimic.motion import MotionSet

    return MotionSet(DATA / "layup")


@pytest.fixture(scope="session")
def all_motions():
    from skillmimic.motion import MotionSet

    return MotionSet(DATA)
