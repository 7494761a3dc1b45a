"""SkillMimic on MuJoCo: a simulated humanoid learns basketball skills from demonstrations."""

import os as _os

# MuJoCo picks its OpenGL platform when it is first imported. With no display (a server, CI), render offscreen
# through EGL, which Mesa provides on CPU machines and the NVIDIA driver on GPU servers; MUJOCO_GL overrides it.
if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY") and not _os.environ.get("WAYLAND_DISPLAY"):
    _os.environ["MUJOCO_GL"] = "egl"

from pathlib import Path as _Path

# The repository's folders (the package is installed editable): defaults are found from here, not from the
# current folder.
ROOT = _Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "BallPlay-M"
