"""What is drawn around the humanoid besides its model: a half court's floor lines, hoops and goal markers.

All of it is drawn only: extra geoms added to a MuJoCo scene (`mjvScene`) after the model's, which the physics
never sees. The ball passes through a drawn rim, net and backboard; the scoring task judges a basket by the ball's
centre alone (`skillmimic/tasks/scoring.py`).

A task describes what to draw for each world as a list of decorations (`Hoop`, `Marker`, `Ring`, `Arrow`) in that
world's frame; each decoration turns into `Shape`s, plain numbers for one geom each, which `add_shapes` appends to
a scene. The court is a `Court`, placed by `Court.around` at a world's hoop. Lengths are in metres; the court's
and the basket's sizes are FIBA's, except the rim's height, which is the task's (2.5 m rather than 3.05 m).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import mujoco
import numpy as np

# The court (FIBA). Court coordinates: origin on the floor under the rim's centre, x towards the centre line,
# y to the left; a line's nominal position is its middle.
COURT_WIDTH = 15.0
HALF_COURT_LENGTH = 14.0
"""Baseline to centre line."""
BASKET_FROM_BASELINE = 1.575
"""Floor distance of the rim's centre from the baseline."""
KEY_WIDTH = 4.9
FREE_THROW_LINE = 5.8
"""Baseline to free-throw line."""
CIRCLE_RADIUS = 1.8
"""Free-throw circle and centre circle."""
THREE_POINT_RADIUS = 6.75
THREE_POINT_SIDE = 0.9
"""The three-point line runs straight, this far inside the side lines, from the baseline until it meets its arc."""
LINE_WIDTH = 0.05

# The basket (FIBA). The rim's height and inner radius are the task's (Hoop.height, Hoop.radius).
RIM_TUBE = 0.015
"""Radius of the rim's tube: drawn thicker than the regulation 9 mm so that it shows in small pictures."""
BOARD_WIDTH = 1.8
BOARD_HEIGHT = 1.05
BOARD_THICKNESS = 0.03
BOARD_GAP = 0.15
"""Board's face to the rim's inner edge: with a 0.225 m rim the face is 0.375 m behind the rim's centre, 1.2 m in
front of the baseline."""
BOARD_BELOW_RIM = 0.15
"""The board's lower edge below the rim (2.90 m against 3.05 m)."""
SQUARE_WIDTH = 0.59
SQUARE_HEIGHT = 0.45
"""The rectangle painted on the board above the rim; its lower line is level with the rim."""
NET_LENGTH = 0.4
NET_BOTTOM_RADIUS = 0.14
NET_STRANDS = 12
NET_CORD = 0.004
"""Radius of the net's cords."""
RIM_SEGMENTS = 16
POLE_BEHIND_BOARD = 1.5
"""Board's face to the pole's axis: the pole stands 0.3 m behind the baseline."""
POLE_RADIUS = 0.08

# Goal markers
MARKER_RADIUS = 0.25
POST_HEIGHT = 1.0
POST_RADIUS = 0.015
KNOB_RADIUS = 0.06
"""The ball on top of a marker's post."""
ARROW_HEIGHT = 0.05
ARROW_WIDTH = 0.04
TARGET_LINE_WIDTH = 0.06

# Heights of the floor drawings' top faces, above the floor (z = 0), in the order they cover each other.
PAINT_TOP = 0.004
LINE_TOP = 0.01
TARGET_TOP = 0.015

LINE_RGBA = (1.0, 1.0, 1.0, 1.0)
PAINT_RGBA = (0.2, 0.35, 0.6, 1.0)
RIM_RGBA = (0.95, 0.25, 0.0, 1.0)
NET_RGBA = (1.0, 1.0, 1.0, 1.0)
BOARD_RGBA = (1.0, 1.0, 1.0, 0.45)
BOARD_LINE_RGBA = (0.1, 0.1, 0.1, 1.0)
POLE_RGBA = (0.3, 0.3, 0.35, 1.0)
TARGET_RGBA = (0.1, 0.4, 1.0, 0.8)

UP = np.array([0.0, 0.0, 1.0])


@dataclasses.dataclass(frozen=True, eq=False)
class Shape:
    """One geom to draw: its MuJoCo type (mjtGeom), size (3,) as `mujoco.mjv_initGeom` reads it, a model geom's
    (box: half extents; capsule, cylinder: radius, half length, unused; sphere: radius; arrow: width, width,
    length), centre (3,), rotation (3, 3) whose columns are the geom's axes in the world, and colour rgba (4,)."""

    type: int
    size: np.ndarray
    pos: np.ndarray
    mat: np.ndarray
    rgba: tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class Hoop:
    """A basket: a rim of inner radius `radius` at `height` above the floor point `centre` (x, y), a net, a board
    and a pole. `facing` is the floor direction (x, y) from the rim towards the court, where the player comes
    from: the board stands on the other side (see `hoop_facing`)."""

    centre: tuple[float, float]
    facing: tuple[float, float]
    height: float
    radius: float

    def shapes(self) -> list[Shape]:
        f2 = _unit(self.facing)
        f = np.array([f2[0], f2[1], 0.0])  # towards the court
        side = np.array([-f2[1], f2[0], 0.0])
        axes = np.column_stack((f, side, UP))
        rim = np.array([self.centre[0], self.centre[1], self.height])
        shapes = []
        # Rim: a ring of capsules whose inner edge is at the rim's radius.
        ring = _circle(rim, self.radius + RIM_TUBE, f, side, RIM_SEGMENTS)
        shapes += [rod(ring[k], ring[k + 1], RIM_TUBE, RIM_RGBA) for k in range(RIM_SEGMENTS)]
        # Net: strands zigzag from the rim down to a narrower ring, half a strand's angle apart.
        top = _circle(rim, self.radius, f, side, NET_STRANDS)
        bottom = _circle(rim - NET_LENGTH * UP, NET_BOTTOM_RADIUS, f, side, NET_STRANDS, turn=0.5)
        for k in range(NET_STRANDS):
            shapes += [rod(top[k], bottom[k], NET_CORD, NET_RGBA), rod(top[k + 1], bottom[k], NET_CORD, NET_RGBA),
                       rod(bottom[k], bottom[k + 1], NET_CORD, NET_RGBA)]
        # Board: its face BOARD_GAP behind the rim's inner edge, its lower edge BOARD_BELOW_RIM below the rim.
        face = self.radius + BOARD_GAP
        board_mid = self.height - BOARD_BELOW_RIM + BOARD_HEIGHT / 2
        board = rim - (face + BOARD_THICKNESS / 2) * f + (board_mid - self.height) * UP
        shapes.append(Shape(mujoco.mjtGeom.mjGEOM_BOX, np.array([BOARD_THICKNESS / 2, BOARD_WIDTH / 2,
                                                                 BOARD_HEIGHT / 2]), board, axes, BOARD_RGBA))
        # The rectangle on the board's face, just in front of it: lines on the face's plane in (side, up).
        front = rim - (face - 0.003) * f
        w, h = SQUARE_WIDTH / 2, SQUARE_HEIGHT
        corners = [front + a * side + b * UP for a, b in ((-w, 0), (w, 0), (w, h), (-w, h))]
        shapes += [_bar(corners[k], corners[(k + 1) % 4], f, LINE_WIDTH, BOARD_LINE_RGBA) for k in range(4)]
        # Bracket from the board to the rim, pole behind the board and its arm.
        shapes.append(rod(rim - face * f, rim - (self.radius + RIM_TUBE) * f, RIM_TUBE, RIM_RGBA))
        pole = rim - (face + POLE_BEHIND_BOARD) * f
        pole_top = np.array([pole[0], pole[1], board_mid])
        shapes.append(rod(np.array([pole[0], pole[1], 0.0]), pole_top, POLE_RADIUS, POLE_RGBA))
        shapes.append(rod(pole_top, board - BOARD_THICKNESS / 2 * f, POLE_RADIUS / 2, POLE_RGBA))
        return shapes


@dataclasses.dataclass(frozen=True)
class Marker:
    """A goal on the floor point `centre` (x, y): a disc with a post that shows from afar."""

    centre: tuple[float, float]

    def shapes(self) -> list[Shape]:
        x, y = self.centre
        h = TARGET_TOP / 2
        disc = Shape(mujoco.mjtGeom.mjGEOM_CYLINDER, np.array([MARKER_RADIUS, h, 0.0]),
                     np.array([x, y, h]), np.eye(3), TARGET_RGBA)
        post = rod(np.array([x, y, 0.0]), np.array([x, y, POST_HEIGHT]), POST_RADIUS, TARGET_RGBA)
        knob = Shape(mujoco.mjtGeom.mjGEOM_SPHERE, np.full(3, KNOB_RADIUS), np.array([x, y, POST_HEIGHT]),
                     np.eye(3), TARGET_RGBA)
        return [disc, post, knob]


@dataclasses.dataclass(frozen=True)
class Ring:
    """A circle on the floor around `centre` (x, y) of `radius`, in segments of at most 0.5 m."""

    centre: tuple[float, float]
    radius: float

    def shapes(self) -> list[Shape]:
        n = max(16, math.ceil(2 * math.pi * self.radius / 0.5))
        pts = _circle(np.array([*self.centre, 0.0]), self.radius, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), n)
        return [stripe(pts[k, :2], pts[k + 1, :2], TARGET_LINE_WIDTH, TARGET_RGBA, TARGET_TOP) for k in range(n)]


@dataclasses.dataclass(frozen=True)
class Arrow:
    """An arrow just above the floor from `start` to `end`, floor points (x, y)."""

    start: tuple[float, float]
    end: tuple[float, float]

    def shapes(self) -> list[Shape]:
        a = np.array([*self.start, ARROW_HEIGHT])
        d = np.array([*self.end, ARROW_HEIGHT]) - a
        length = float(np.linalg.norm(d))
        if length == 0.0:
            return []
        size = np.array([ARROW_WIDTH, ARROW_WIDTH, length])
        return [Shape(mujoco.mjtGeom.mjGEOM_ARROW, size, a, _frame(d), TARGET_RGBA)]


Decoration = Hoop | Marker | Ring | Arrow


@dataclasses.dataclass(frozen=True)
class Court:
    """A half court whose basket is above the floor point `basket` (x, y), laid out along `facing` (x, y), the
    floor direction from the basket towards the centre line: the lines of one half of a FIBA court (baseline,
    side lines, the key painted, free-throw circle, three-point line, centre line and half the centre circle),
    50 geoms."""

    basket: tuple[float, float]
    facing: tuple[float, float]

    @classmethod
    def around(cls, decorations: Sequence[Decoration]) -> "Court":
        """The court of a world with these decorations: its basket under the first hoop, facing as the hoop
        faces; with no hoop, the free-throw line is centred on the origin and the basket is along +x."""
        for d in decorations:
            if isinstance(d, Hoop):
                return cls(d.centre, d.facing)
        return cls((FREE_THROW_LINE - BASKET_FROM_BASELINE, 0.0), (-1.0, 0.0))

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """Court coordinates (..., 2) (origin under the rim, x towards the centre line) to floor points (..., 2)."""
        f = _unit(self.facing)
        side = np.array([-f[1], f[0]])
        return np.asarray(self.basket) + points[..., :1] * f + points[..., 1:2] * side

    def shapes(self) -> list[Shape]:
        b, half = BASKET_FROM_BASELINE, COURT_WIDTH / 2
        centre_x = HALF_COURT_LENGTH - b
        free_x = FREE_THROW_LINE - b
        key = KEY_WIDTH / 2
        side3 = half - THREE_POINT_SIDE
        arc_end = math.asin(side3 / THREE_POINT_RADIUS)
        join_x = THREE_POINT_RADIUS * math.cos(arc_end)
        segments = [  # straight lines, court coordinates
            ((-b, -half), (-b, half)),  # baseline
            ((-b, -half), (centre_x, -half)), ((-b, half), (centre_x, half)),  # side lines
            ((centre_x, -half), (centre_x, half)),  # centre line
            ((-b, -key), (free_x, -key)), ((-b, key), (free_x, key)), ((free_x, -key), (free_x, key)),  # the key
            ((-b, -side3), (join_x, -side3)), ((-b, side3), (join_x, side3)),  # three-point line's straight parts
        ]
        polylines = [np.array(s) for s in segments]
        polylines.append(_arc_points((free_x, 0.0), CIRCLE_RADIUS, 0.0, 2 * math.pi, 16))
        polylines.append(_arc_points((0.0, 0.0), THREE_POINT_RADIUS, -arc_end, arc_end, 16))
        polylines.append(_arc_points((centre_x, 0.0), CIRCLE_RADIUS, math.pi / 2, 3 * math.pi / 2, 8))
        paint = self.to_world(np.array([[-b, 0.0], [free_x, 0.0]]))
        shapes = [stripe(paint[0], paint[1], KEY_WIDTH, PAINT_RGBA, PAINT_TOP, extend=False)]
        for line in polylines:
            pts = self.to_world(line)
            shapes += [stripe(pts[k], pts[k + 1], LINE_WIDTH, LINE_RGBA, LINE_TOP) for k in range(len(pts) - 1)]
        return shapes


def hoop_facing(centre: Sequence[float], start: Sequence[float],
                start_heading: Sequence[float]) -> tuple[float, float]:
    """Which way a hoop faces: from the rim's floor point `centre` towards `start`, where the humanoid stood at
    the episode's start, so that it comes at the rim from the front and the board stands on the far side. A rim
    within 0.5 m of the start (throwing's target, which starts right above the humanoid) faces against the
    humanoid's start heading (a floor direction): the board stands in front of it. All (x, y)."""
    d = np.asarray(start[:2], dtype=np.float64) - np.asarray(centre[:2], dtype=np.float64)
    if np.linalg.norm(d) < 0.5:
        d = -np.asarray(start_heading[:2], dtype=np.float64)
    f = _unit(d)
    return float(f[0]), float(f[1])


def focus(decorations: Sequence[Decoration]) -> np.ndarray | None:
    """The floor point (2,) a camera should keep in view besides the humanoid: the centre of the first hoop,
    marker or ring; None when there is none."""
    for d in decorations:
        if not isinstance(d, Arrow):
            return np.asarray(d.centre, dtype=np.float64)
    return None


def add_shapes(scene: mujoco.MjvScene, shapes: Sequence[Shape], shift: Sequence[float] = (0.0, 0.0)) -> int:
    """Append shapes to `scene`, moved by the floor offset `shift` (x, y); -> how many fitted (a full scene,
    `scene.maxgeom` geoms, takes no more, as MuJoCo's own scene updates do)."""
    offset = np.array([shift[0], shift[1], 0.0])
    added = 0
    for s in shapes:
        if scene.ngeom >= scene.maxgeom:
            break
        mujoco.mjv_initGeom(scene.geoms[scene.ngeom], s.type, np.asarray(s.size, np.float64), s.pos + offset,
                            np.asarray(s.mat, np.float64).flatten(), np.asarray(s.rgba, np.float32))
        scene.ngeom += 1
        added += 1
    return added


def rod(a: np.ndarray, b: np.ndarray, radius: float, rgba) -> Shape:
    """A capsule from point a (3,) to point b (3,)."""
    d = b - a
    return Shape(mujoco.mjtGeom.mjGEOM_CAPSULE, np.array([radius, np.linalg.norm(d) / 2, 0.0]), (a + b) / 2,
                 _frame(d), rgba)


def stripe(a: np.ndarray, b: np.ndarray, width: float, rgba, top: float, extend: bool = True) -> Shape:
    """A flat box on the floor from floor point a (2,) to b (2,), `width` wide, its top face `top` above the
    floor; with `extend` it reaches width / 2 past both ends, so that lines meeting at a corner or along an arc
    close their joints."""
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    u = _unit(d)
    axes = np.array([[u[0], -u[1], 0.0], [u[1], u[0], 0.0], [0.0, 0.0, 1.0]])
    half_length = np.linalg.norm(d) / 2 + (width / 2 if extend else 0.0)
    mid = (np.asarray(a) + np.asarray(b)) / 2
    return Shape(mujoco.mjtGeom.mjGEOM_BOX, np.array([half_length, width / 2, top / 2]),
                 np.array([mid[0], mid[1], top / 2]), axes, rgba)


def _bar(a: np.ndarray, b: np.ndarray, normal: np.ndarray, width: float, rgba) -> Shape:
    """A thin flat box from point a (3,) to b (3,), `width` wide, lying in the plane whose normal is `normal`."""
    d = b - a
    u = d / np.linalg.norm(d)
    axes = np.column_stack((u, np.cross(normal, u), normal))
    return Shape(mujoco.mjtGeom.mjGEOM_BOX, np.array([np.linalg.norm(d) / 2 + width / 2, width / 2, 0.002]),
                 (a + b) / 2, axes, rgba)


def _circle(centre: np.ndarray, radius: float, x: np.ndarray, y: np.ndarray, n: int, turn: float = 0.0) -> np.ndarray:
    """n + 1 points (the first repeated last) on a circle around centre (3,) in the plane of unit vectors x, y,
    starting `turn` of a step from x. -> (n + 1, 3)"""
    a = 2 * np.pi * (np.arange(n + 1) + turn) / n
    return centre + radius * (np.cos(a)[:, None] * x + np.sin(a)[:, None] * y)


def _arc_points(centre: tuple[float, float], radius: float, start: float, stop: float, n: int) -> np.ndarray:
    """n + 1 points of an arc around centre (2,) from angle start to stop (rad). -> (n + 1, 2)"""
    a = np.linspace(start, stop, n + 1)
    return np.asarray(centre) + radius * np.stack((np.cos(a), np.sin(a)), axis=-1)


def _frame(axis: np.ndarray) -> np.ndarray:
    """A rotation (3, 3) whose third column (a geom's long axis) is along `axis` (3,)."""
    z = axis / np.linalg.norm(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.column_stack((x, np.cross(z, x), z))


def _unit(v) -> np.ndarray:
    """v (2,) or (3,) scaled to length 1; a zero vector has no direction."""
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v)
    if n == 0.0:
        raise ValueError("a direction of length zero")
    return v / n
