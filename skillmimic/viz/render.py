"""Pictures of the humanoid and the ball on a court: offscreen frames of one or more worlds, side by side.

Rendering uses plain MuJoCo's renderer on one CPU-side MjData, whatever engine ran the physics: it takes qpos
rows (from a Simulator, or from reference frames for dataset replay). With no display it renders through EGL
(see skillmimic/__init__.py). Worlds are laid out across the floor `spacing` metres apart; a camera follows their
middle. The ball turns green while a hand touches it (or while the data's contact label is 1). Each world's
decorations (hoops, goal markers: skillmimic/viz/court.py) are drawn in that world's place, and the half court's
lines, when asked for, at world 0's hoop; they are drawn only, the physics does not know them.
"""

from __future__ import annotations

from typing import Sequence

import mujoco
import numpy as np
import torch
from PIL import Image, ImageDraw

from skillmimic import model as M
from skillmimic.viz.court import Court, Decoration, add_shapes, focus

BALL_RGBA = np.array([0.9, 0.4, 0.1, 1.0], dtype=np.float32)
BALL_TOUCHED_RGBA = np.array([0.2, 0.8, 0.2, 1.0], dtype=np.float32)


class SceneRenderer:
    """Draws worlds of the humanoid + ball into RGB images of shape (height, width, 3), uint8."""

    def __init__(self, mjm: mujoco.MjModel | None = None, width: int = 640, height: int = 480,
                 spacing: float = 2.5, offscreen: bool = True, court: bool = False):
        """mjm: the model whose qpos rows will be drawn (default: the full hand's). With offscreen=False no
        offscreen context is made: fill_scene() serves a window's own context. court: draw a half court's floor
        lines, placed by `Court.around` from world 0's decorations (at its hoop, or by the origin)."""
        self.model = mjm if mjm is not None else M.load_model()
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, height)
        self.renderer = mujoco.Renderer(self.model, height, width) if offscreen else None
        self.data = mujoco.MjData(self.model)
        self.spacing = spacing
        self.court = court
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.camera.distance, self.camera.azimuth, self.camera.elevation = 5.0, 135.0, -15.0
        self.option = mujoco.MjvOption()
        self.perturb = mujoco.MjvPerturb()
        self._ball_geom = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, "ball")
        ball_joint = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, "ball")
        self._ball_qpos = int(self.model.jnt_qposadr[ball_joint])

    def offsets(self, num_worlds: int) -> np.ndarray:
        """Where each world is drawn: (num_worlds, 2) xy shifts, centred on the origin."""
        y = (np.arange(num_worlds) - (num_worlds - 1) / 2) * self.spacing
        return np.stack((np.zeros(num_worlds), y), axis=1)

    def render(self, qpos: torch.Tensor | np.ndarray, touched: torch.Tensor | np.ndarray | None = None,
               text: str | None = None, follow: bool = True,
               decor: Sequence[Sequence[Decoration]] | None = None) -> np.ndarray:
        """qpos (W, nq) of W worlds of the renderer's model; touched (W,) bool colours the ball; text is written in
        the top-left corner; decor: W lists of what to draw for each world, in that world's frame (see
        fill_scene). -> (height, width, 3) uint8"""
        self.fill_scene(self.renderer.scene, qpos, touched, follow, decor)
        image = self.renderer.render()
        if text:
            image = write_text(image, text)
        return image

    def fill_scene(self, scene: mujoco.MjvScene, qpos: torch.Tensor | np.ndarray,
                   touched: torch.Tensor | np.ndarray | None = None, follow: bool = True,
                   decor: Sequence[Sequence[Decoration]] | None = None) -> None:
        """Put the worlds, their decorations and the court into `scene`, for this renderer or for a window's own
        context. decor: one list per world (W lists), or None. With `follow` the camera looks at the middle of the
        humanoids, or, when the decorations have goals (`court.focus`), halfway between them and the goals."""
        q = qpos.detach().cpu().numpy() if isinstance(qpos, torch.Tensor) else np.asarray(qpos)
        q = np.atleast_2d(q).astype(np.float64)
        touched = np.zeros(len(q), bool) if touched is None else np.asarray(
            touched.cpu() if isinstance(touched, torch.Tensor) else touched, dtype=bool).reshape(-1)
        shifts = self.offsets(len(q))  # (W, 2)
        decor = [[] for _ in q] if decor is None else [list(items) for items in decor]
        if len(decor) != len(q):
            raise ValueError(f"decorations for {len(decor)} worlds, qpos of {len(q)}")
        if follow:
            centre = (q[:, 0:2] + shifts).mean(0)
            goals = [g + shifts[i] for i, items in enumerate(decor) if (g := focus(items)) is not None]
            if goals:
                centre = 0.5 * (centre + np.mean(goals, axis=0))
            self.camera.lookat[:] = (centre[0], centre[1], 0.9)
        for i, row in enumerate(q):
            self.data.qpos[:] = row
            self.data.qpos[0:2] += shifts[i]
            self.data.qpos[self._ball_qpos : self._ball_qpos + 2] += shifts[i]
            mujoco.mj_kinematics(self.model, self.data)
            self.model.geom_rgba[self._ball_geom] = BALL_TOUCHED_RGBA if touched[i] else BALL_RGBA
            if i == 0:
                mujoco.mjv_updateScene(self.model, self.data, self.option, self.perturb, self.camera,
                                       mujoco.mjtCatBit.mjCAT_ALL, scene)
            else:  # further worlds add their moving geoms to the scene of the first
                mujoco.mjv_addGeoms(self.model, self.data, self.option, self.perturb,
                                    mujoco.mjtCatBit.mjCAT_DYNAMIC, scene)
        if self.court:
            add_shapes(scene, Court.around(decor[0]).shapes(), shifts[0])
        for i, items in enumerate(decor):
            for item in items:
                add_shapes(scene, item.shapes(), shifts[i])

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()


def write_text(image: np.ndarray, text: str) -> np.ndarray:
    """The image with text in its top-left corner, white on a dark box. (H, W, 3) uint8 -> (H, W, 3) uint8."""
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    box = draw.multiline_textbbox((10, 10), text)
    draw.rectangle((box[0] - 5, box[1] - 5, box[2] + 5, box[3] + 5), fill=(0, 0, 0))
    draw.multiline_text((10, 10), text, fill=(255, 255, 255))
    return np.asarray(pil)
