"""Shared fixtures: motion sets loaded once per session; whether torch.compile runs here."""

import os
import shutil

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


@pytest.fixture(scope="session")
def needs_torch_compile():
    """Skips the test where torch.compile cannot run on this CPU (it needs a C++ compiler and its headers)."""
    import torch

    works = False
    if any(shutil.which(c) for c in ("cc", "gcc", "g++", "clang")):
        try:
            works = float(torch.compile(lambda x: x * 2 + 1)(torch.ones(3)).sum()) == 9.0
        except Exception:  # noqa: BLE001 (any failure of the toolchain: the feature cannot run here)
            works = False
    if not works:
        pytest.skip("torch.compile does not run on this machine (no C++ toolchain)")
