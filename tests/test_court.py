"""The drawn court (skillmimic/viz/court.py): its geometry by hand, the hoop and the lines where the camera should
see them in rendered pictures (EGL on the CPU), and each task's decorations following its goal."""

import math

import mujoco
import numpy as np
import pytest
import torch

from skillmimic.tasks import TASKS
from skillmimic.tasks.scoring import HOOP_HEIGHT, RIM_RADIUS
from skillmimic.tasks.state import TaskState
from skillmimic.viz import court as C
from skillmimic.viz.court import Arrow, Court, Hoop, Marker, Ring, add_shapes, hoop_facing
from skillmimic.viz.render import SceneRenderer

WIDTH, HEIGHT = 160, 120


def _standing_state(n=2, root=(0.0, 0.0)) -> TaskState:
    """n worlds, the pelvis at `root` facing +x (its forward axis is its local z: a quarter turn about y)."""
    quat = torch.tensor([math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0]).expand(n, 4)
    zeros = torch.zeros(n, 3)
    return TaskState(root_pos=torch.tensor([[root[0], root[1], 0.9]] * n), root_quat=quat, root_vel=zeros,
                     ball_pos=torch.tensor([[root[0] + 0.5, root[1], 0.5]] * n), ball_vel=zeros,
                     hand_ball=torch.zeros(n, dtype=torch.bool), standing=torch.ones(n, dtype=torch.bool))


def _task(name, n=2):
    cls, cfg_cls = TASKS[name]
    task = cls(cfg_cls(), n, torch.device("cpu"), torch.Generator().manual_seed(0))
    task.reset(torch.arange(n), _standing_state(n))
    return task


def _project(scene: mujoco.MjvScene, point, width: int, height: int) -> tuple[np.ndarray, float]:
    """Pixel (column, row) of a world point (3,) in the picture of `scene`'s camera, and pixels per metre there."""
    cam = scene.camera[0]
    pos, forward, up = np.array(cam.pos), np.array(cam.forward), np.array(cam.up)
    right = np.cross(forward, up)
    d = np.asarray(point, dtype=np.float64) - pos
    depth = d @ forward
    half_h = (cam.frustum_top - cam.frustum_bottom) / 2
    half_w = half_h * width / height
    x = ((d @ right) / depth * cam.frustum_near - cam.frustum_center) / half_w  # -1..1 across the picture
    y = ((d @ up) / depth * cam.frustum_near - (cam.frustum_top + cam.frustum_bottom) / 2) / half_h
    per_metre = (width / 2) / (half_w * depth / cam.frustum_near)
    return np.array([(x + 1) / 2 * width, (1 - y) / 2 * height]), per_metre


def _rim_coloured(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., k].astype(int) for k in range(3))
    return (r > 150) & (g < 110) & (b < 70) & (r - g > 80)


@pytest.fixture(scope="module")
def qpos(layup_motions):
    q, _ = layup_motions.state(torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    return q  # (1, nq): the humanoid near (0.2, 1.3) with the ball


@pytest.fixture(scope="module")
def renderer():
    r = SceneRenderer(width=WIDTH, height=HEIGHT)
    yield r
    r.close()


def test_hoop_geometry_by_hand():
    hoop = Hoop((2.0, 1.0), (0.0, -1.0), 2.5, 0.225)  # the court towards -y: the board on the +y side
    shapes = hoop.shapes()
    rim = shapes[: C.RIM_SEGMENTS]
    assert all(s.rgba == C.RIM_RGBA for s in rim)
    ring = (0.225 + C.RIM_TUBE) * math.cos(math.pi / C.RIM_SEGMENTS)  # a segment's middle, inside the circle
    assert all(abs(np.hypot(s.pos[0] - 2.0, s.pos[1] - 1.0) - ring) < 1e-9 and s.pos[2] == 2.5 for s in rim)
    (board,) = [s for s in shapes if s.rgba == C.BOARD_RGBA]
    assert board.pos[1] - board.size[0] == pytest.approx(1.0 + 0.225 + C.BOARD_GAP)  # its face, towards the rim
    assert board.pos[2] - board.size[2] == pytest.approx(2.5 - C.BOARD_BELOW_RIM)  # its lower edge
    assert 2 * board.size[1] == pytest.approx(C.BOARD_WIDTH) and board.pos[0] == pytest.approx(2.0)
    pole = [s for s in shapes if s.rgba == C.POLE_RGBA and s.mat[2, 2] == pytest.approx(1.0)]
    assert len(pole) == 1 and pole[0].pos[2] == pytest.approx(pole[0].size[1])  # upright, from the floor
    assert pole[0].pos[1] > board.pos[1]  # behind the board
    net = [s for s in shapes if s.rgba == C.NET_RGBA]
    assert len(net) == 3 * C.NET_STRANDS and min(s.pos[2] for s in net) == pytest.approx(2.5 - C.NET_LENGTH)


def test_court_lines_by_hand():
    hoop = Hoop((2.0, 1.0), (0.0, -1.0), 2.5, 0.225)
    court = Court.around([Marker((9.0, 9.0)), hoop])
    assert court == Court((2.0, 1.0), (0.0, -1.0))  # at the first hoop, facing as it faces
    shapes = court.shapes()
    assert 40 <= len(shapes) <= 60
    assert all(s.pos[2] + s.size[2] <= C.LINE_TOP + 1e-12 for s in shapes)  # flat on the floor
    lines = [s for s in shapes if s.rgba == C.LINE_RGBA]

    def line_at(x, y, length):
        return any(np.allclose(s.pos[:2], (x, y)) and s.size[0] == pytest.approx((length + C.LINE_WIDTH) / 2)
                   for s in lines)

    # Court coordinates turn into the world as x -> -y, y -> +x around the basket (2, 1).
    assert line_at(2.0, 1.0 + C.BASKET_FROM_BASELINE, C.COURT_WIDTH)  # baseline, 1.2 m behind the board's face
    assert line_at(2.0, 1.0 - (C.HALF_COURT_LENGTH - C.BASKET_FROM_BASELINE), C.COURT_WIDTH)  # centre line
    assert line_at(2.0, 1.0 - (C.FREE_THROW_LINE - C.BASKET_FROM_BASELINE), C.KEY_WIDTH)  # free-throw line
    arc = [s for s in lines if abs(np.hypot(s.pos[0] - 2.0, s.pos[1] - 1.0) - C.THREE_POINT_RADIUS) < 0.05]
    assert len(arc) == 16
    (paint,) = [s for s in shapes if s.rgba == C.PAINT_RGBA]
    assert 2 * paint.size[1] == pytest.approx(C.KEY_WIDTH) and 2 * paint.size[0] == pytest.approx(C.FREE_THROW_LINE)
    # With no hoop the free-throw line is centred on the origin, the basket along +x.
    assert Court.around([Marker((3.0, 3.0))]) == Court((C.FREE_THROW_LINE - C.BASKET_FROM_BASELINE, 0.0), (-1, 0))


def test_hoop_facing_and_a_full_scene():
    assert hoop_facing((4.0, 0.0), (0.0, 0.0), (0.0, 1.0)) == pytest.approx((-1.0, 0.0))  # towards the start
    assert hoop_facing((0.1, 0.0), (0.0, 0.0), (0.0, 1.0)) == pytest.approx((0.0, -1.0))  # above it: board ahead
    scene = mujoco.MjvScene(mujoco.MjModel.from_xml_string("<mujoco/>"), maxgeom=10)
    assert add_shapes(scene, Court((0.0, 0.0), (1.0, 0.0)).shapes()) == 10 and scene.ngeom == 10


def test_each_task_draws_its_goal_and_follows_set_goal():
    goal = torch.tensor([3.0, 1.0, 0.0])
    toward_start = (-3 / math.sqrt(10), -1 / math.sqrt(10))

    scoring = _task("scoring")
    scoring.set_goal(goal)
    for i in range(2):
        assert scoring.decorations(i) == [Hoop((3.0, 1.0), pytest.approx(toward_start), HOOP_HEIGHT, RIM_RADIUS)]

    throwing = _task("throwing")
    (above,) = throwing.decorations(0)  # right above the humanoid, which faces +x: the board in front of it
    assert above.centre == (0.0, 0.0) and above.facing == pytest.approx((-1.0, 0.0))
    assert above.height == throwing.cfg.height
    throwing.set_goal(goal)
    assert throwing.decorations(1) == [Hoop((3.0, 1.0), pytest.approx(toward_start), throwing.cfg.height,
                                            RIM_RADIUS)]

    heading = _task("heading")
    heading.set_goal(goal)
    marker, arrow = heading.decorations(0)
    assert marker == Marker((3.0, 1.0)) and isinstance(arrow, Arrow)
    u = np.array([3.0, 1.0]) / math.sqrt(10)
    assert np.allclose(arrow.start, 0.4 * u, atol=1e-6) and np.allclose(arrow.end, 1.4 * u, atol=1e-6)
    heading.step(_standing_state(root=(2.5, 1.0)))  # within 1 m of the goal: no arrow
    assert heading.decorations(1) == [Marker((3.0, 1.0))]

    circling = _task("circling")
    circling.set_goal(goal)
    radius = float(circling.radius[0])
    assert circling.decorations(0) == [Marker((3.0, 1.0)), Ring((3.0, 1.0), radius)]


def test_the_rim_is_drawn_where_the_hoop_is(renderer, qpos):
    """Rim-coloured pixels appear around the rim's projected centre, wherever set_goal puts the hoop, and
    nowhere else."""
    cam = renderer.camera
    cam.lookat[:], cam.distance, cam.azimuth, cam.elevation = (1.0, -0.5, 1.6), 6.0, 20.0, -10.0
    plain = renderer.render(qpos, follow=False)
    task = _task("scoring", n=1)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    for goal in ((2.0, 0.5), (0.0, -2.0)):
        task.set_goal(torch.tensor(goal))
        img = renderer.render(qpos, follow=False, decor=[task.decorations(0)])
        new = _rim_coloured(img) & (np.abs(img.astype(int) - plain).sum(-1) > 30)
        (col, row), per_metre = _project(renderer.renderer.scene, (*goal, HOOP_HEIGHT), WIDTH, HEIGHT)
        assert 10 < col < WIDTH - 10 and 10 < row < HEIGHT - 10, (col, row)  # the view holds the hoop
        dist = np.hypot(cols + 0.5 - col, rows + 0.5 - row)
        reach = 0.5 * per_metre + 2  # the rim (0.24 m) and its bracket (0.375 m from the centre), a pixel or two
        assert new[dist < reach].sum() >= 5, goal
        assert new[dist > reach].sum() == 0, goal


def test_court_lines_change_the_floor_only(qpos):
    with_court = SceneRenderer(width=WIDTH, height=HEIGHT, court=True)
    try:
        cam = with_court.camera
        cam.lookat[:], cam.distance, cam.azimuth, cam.elevation = (0.5, -1.0, 0.0), 7.0, 200.0, -50.0
        img = with_court.render(qpos, follow=False)
        with_court.court = False
        plain = with_court.render(qpos, follow=False)
        scene = with_court.renderer.scene
    finally:
        with_court.close()
    changed = np.abs(img.astype(int) - plain).sum(-1) > 30
    assert changed.mean() > 0.05  # the paint and the lines cover much of the floor in view

    def around(point, image, k=2):
        """The pixels within k of where `point` (3,) shows. -> (2k + 1, 2k + 1, 3) int"""
        (col, row), _ = _project(scene, point, WIDTH, HEIGHT)
        return image[int(row) - k: int(row) + k + 1, int(col) - k: int(col) + k + 1].astype(int)

    def whitest(pixels):  # a white line (lit grey) has all three channels high, the brown floor not its blue one
        return pixels.min(-1).max()

    # No hoop: the free-throw line runs across y through the origin, the key towards +x.
    for on_a_line in ((0.0, -1.5, 0.0), (-1.8, 0.0, 0.0)):  # the free-throw line; its circle's far point
        assert whitest(around(on_a_line, img)) > 130 and whitest(around(on_a_line, plain)) < 100, on_a_line
    paint, floor = around((2.0, -1.5, 0.0), img, 0)[0, 0], around((2.0, -1.5, 0.0), plain, 0)[0, 0]
    assert paint[2] > paint[0] + 20 and floor[0] > floor[2] + 20  # blue paint on a brown floor
    off_lines = (-3.0, -4.0, 0.0)  # inside the court, on no line
    assert np.abs(around(off_lines, img) - around(off_lines, plain)).sum(-1).max() <= 30
