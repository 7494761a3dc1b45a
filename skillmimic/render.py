"""Pictures of the humanoid and the ball: offscreen frames of one or more worlds, side by side.

Rendering uses plain MuJoCo's renderer on one CPU-side MjData, whatever engine ran the physics: it takes qpos
rows (from a Simulator, or from reference frames for dataset replay). With no display it renders through EGL
(see skillmimic/__init__.py). Worlds are laid out across the floor `spacing` metres apart; a camera follows their
middle. The ball turns green while a hand touches it (or while the data's contact label is 1).
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch
from PIL import Image, ImageDraw

from skillmimic import model as M

BALL_RGBA = np.array([0.9, 0.4, 0.1, 1.0], dtype=np.float32)
BALL_TOUCHED_RGBA = np.array([0.2, 0.8, 0.2, 1.0], dtype=np.float32)


class SceneRenderer:
    """Draws worlds of the humanoid + ball into RGB images of shape (height, width, 3), uint8."""

    def __init__(self, mjm: mujoco.MjModel | None = None, width: int = 640, height: int = 480,
                 spacing: float = 2.5, offscreen: bool = True):
        """mjm: the model whose qpos rows will be drawn (default: the full hand's). With offscreen=False no
        offscreen context is made: fill_scene() serves a window's own context."""
        self.model = mjm if mjm is not None else M.load_model()
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, height)
        self.renderer = mujoco.Renderer(self.model, height, width) if offscreen else None
        self.data = mujoco.MjData(self.model)
        self.spacing = spacing
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
               text: str | None = None, follow: bool = True, marker: np.ndarray | None = None) -> np.ndarray:
        """qpos (W, nq) of W worlds of the renderer's model; touched (W,) bool colours the ball; text is written in
        the top-left corner; marker (3,) draws a target on the floor."""
        self.fill_scene(self.renderer.scene, qpos, touched, follow, marker)
        image = self.renderer.render()
        if text:
            image = write_text(image, text)
        return image

    def fill_scene(self, scene: mujoco.MjvScene, qpos: torch.Tensor | np.ndarray,
                   touched: torch.Tensor | np.ndarray | None = None, follow: bool = True,
                   marker: np.ndarray | None = None) -> None:
        """Put the worlds (and the marker) into `scene`, for this renderer or for a window's own context."""
        q = qpos.detach().cpu().numpy() if isinstance(qpos, torch.Tensor) else np.asarray(qpos)
        q = np.atleast_2d(q).astype(np.float64)
        touched = np.zeros(len(q), bool) if touched is None else np.asarray(
            touched.cpu() if isinstance(touched, torch.Tensor) else touched, dtype=bool).reshape(-1)
        shifts = self.offsets(len(q))
        if follow:
            centre = (q[:, 0:2] + shifts).mean(0)
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
        if marker is not None and scene.ngeom < scene.maxgeom:
            g = scene.geoms[scene.ngeom]
            mujoco.mjv_initGeom(g, mujoco.mjtGeom.mjGEOM_CYLINDER, np.array([0.25, 0.25, 0.01]),
                                np.asarray(marker, dtype=np.float64), np.eye(3).flatten(),
                                np.array([0.1, 0.4, 1.0, 0.8], dtype=np.float32))
            scene.ngeom += 1

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
