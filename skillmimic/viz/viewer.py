"""The interactive window of play.py: a GLFW window whose keys and mouse this program owns, drawing MuJoCo scenes.

MuJoCo's bundled viewer binds every letter to a display option, so Q, W, E and R would toggle its settings as well
as switch skills; this window binds only what `SkillKeys` maps, plus Escape (quit), Backspace (restart), Space
(pause), a left click on the floor (sets the task target), a right drag (turns the camera) and the wheel (zoom).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import mujoco
import numpy as np
import yaml

from skillmimic import skills
from skillmimic.errors import UserError
from skillmimic.viz.court import Decoration
from skillmimic.viz.render import SceneRenderer


class SkillKeys:
    """Key name (GLFW's: 'Q', 'LEFT', ...) -> skill label, from a YAML mapping."""

    def __init__(self, mapping: dict[str, int]):
        self.mapping = {str(k).upper(): int(v) for k, v in mapping.items()}
        for key, label in self.mapping.items():
            if not 0 <= label < skills.NUM_SLOTS:
                raise ValueError(f"key {key}: skill label {label} is outside the {skills.NUM_SLOTS} slots")

    @classmethod
    def from_file(cls, path: str | Path) -> "SkillKeys":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such key map")
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a mapping of key names to skill labels")
        try:
            return cls(data)
        except ValueError as e:
            raise UserError(f"{path}: {e}") from None

    def label(self, key: str) -> int | None:
        """The skill a key selects, or None for a key that selects none."""
        return self.mapping.get(key.upper())

    def help(self) -> str:
        return "  ".join(f"{k}:{skills.skill_name(v)}" for k, v in self.mapping.items())


def glfw_key_name(key: int) -> str:
    """GLFW key code -> the name used in key maps ('Q', 'LEFT', 'ESCAPE', ...)."""
    import glfw

    for name in ("LEFT", "RIGHT", "UP", "DOWN", "ESCAPE", "BACKSPACE", "SPACE", "ENTER", "TAB"):
        if key == getattr(glfw, f"KEY_{name}"):
            return name
    if glfw.KEY_A <= key <= glfw.KEY_Z or glfw.KEY_0 <= key <= glfw.KEY_9:
        return chr(key)
    return f"KEY{key}"


class Window:
    """A window that draws the scenes of a SceneRenderer (made with offscreen=False) and reports input."""

    def __init__(self, scenes: SceneRenderer, width: int, height: int, title: str,
                 on_key: Callable[[str], None], on_floor_click: Callable[[np.ndarray], None]):
        import glfw

        self.glfw = glfw
        if not glfw.init():
            raise UserError("no display for a window (is DISPLAY set?): run with --headless to render offscreen")
        glfw.window_hint(glfw.SAMPLES, 4)
        self.window = glfw.create_window(width, height, title, None, None)
        if not self.window:
            glfw.terminate()
            raise UserError("could not open a window with OpenGL: run with --headless to render offscreen")
        glfw.make_context_current(self.window)
        glfw.swap_interval(0)
        self.scenes = scenes
        self.scene = mujoco.MjvScene(scenes.model, maxgeom=20000)
        self.context = mujoco.MjrContext(scenes.model, mujoco.mjtFontScale.mjFONTSCALE_150)
        self.on_key, self.on_floor_click = on_key, on_floor_click
        self._floor = mujoco.mj_name2id(scenes.model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        self._drag: tuple[float, float] | None = None
        glfw.set_key_callback(self.window, self._key)
        glfw.set_mouse_button_callback(self.window, self._button)
        glfw.set_cursor_pos_callback(self.window, self._cursor)
        glfw.set_scroll_callback(self.window, self._scroll)

    # --- input -------------------------------------------------------------------------------------------------
    def _key(self, window, key, scancode, action, mods) -> None:
        if action == self.glfw.PRESS:
            self.on_key(glfw_key_name(key))

    def _button(self, window, button, action, mods) -> None:
        glfw = self.glfw
        if button == glfw.MOUSE_BUTTON_LEFT and action == glfw.PRESS:
            x, y = glfw.get_cursor_pos(window)
            point = self.floor_point(x, y)
            if point is not None:
                self.on_floor_click(point)
        elif button == glfw.MOUSE_BUTTON_RIGHT:
            self._drag = glfw.get_cursor_pos(window) if action == glfw.PRESS else None

    def _cursor(self, window, x, y) -> None:
        if self._drag is not None:
            cam = self.scenes.camera
            cam.azimuth -= 0.3 * (x - self._drag[0])
            cam.elevation = float(np.clip(cam.elevation - 0.3 * (y - self._drag[1]), -89, 89))
            self._drag = (x, y)

    def _scroll(self, window, dx, dy) -> None:
        self.scenes.camera.distance = float(np.clip(self.scenes.camera.distance * 0.9 ** dy, 1.0, 30.0))

    def floor_point(self, x: float, y: float) -> np.ndarray | None:
        """The floor point under window pixel (x, y), or None when the ray hits something else or nothing."""
        w, h = self.glfw.get_window_size(self.window)
        point = np.zeros(3)
        geom, flex, skin = np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.int32)
        mujoco.mjv_select(self.scenes.model, self.scenes.data, self.scenes.option, w / max(h, 1), x / w,
                          1.0 - y / h, self.scene, point, geom, flex, skin)
        return point if int(geom[0]) == self._floor else None

    # --- drawing -----------------------------------------------------------------------------------------------
    def draw(self, qpos, touched, text: str, decor: Sequence[Sequence[Decoration]] | None = None) -> None:
        """Draw W worlds: qpos (W, nq), touched (W,), their decorations (W lists, see SceneRenderer.fill_scene)
        and the text in the top-left corner."""
        glfw = self.glfw
        self.scenes.fill_scene(self.scene, qpos, touched, follow=True, decor=decor)
        w, h = glfw.get_framebuffer_size(self.window)
        viewport = mujoco.MjrRect(0, 0, w, h)
        mujoco.mjr_render(viewport, self.scene, self.context)
        mujoco.mjr_overlay(mujoco.mjtFont.mjFONT_NORMAL, mujoco.mjtGridPos.mjGRID_TOPLEFT, viewport, text, "",
                           self.context)
        glfw.swap_buffers(self.window)
        glfw.poll_events()

    def pixels(self) -> np.ndarray:
        """The last drawn frame. (H, W, 3) uint8."""
        w, h = self.glfw.get_framebuffer_size(self.window)
        rgb = np.zeros((h, w, 3), np.uint8)
        mujoco.mjr_readPixels(rgb, None, mujoco.MjrRect(0, 0, w, h), self.context)
        return np.flipud(rgb).copy()

    def closed(self) -> bool:
        return bool(self.glfw.window_should_close(self.window))

    def close(self) -> None:
        self.glfw.destroy_window(self.window)
        self.glfw.terminate()
