"""Shared fixtures: motion sets loaded once per session."""

import pytest

from paths import DATA


@pytest.fixture(scope="session")
def layup_motions():
    from skillmimic.motion import MotionSet

    return MotionSet(DATA / "layup")


@pytest.fixture(scope="session")
def all_motions():
    from skillmimic.motion import MotionSet

    return MotionSet(DATA)
