"""Write the project's MJCF (humanoid + basketball + floor) from the facts of the paper's humanoid, with a chosen hand.

    python tools/make_model.py ../shared/reference/mocap_humanoid.xml skillmimic/assets/   # every hand
    python tools/make_model.py ../shared/reference/mocap_humanoid.xml out.xml rigid        # one hand

Taken from the reference as facts: the body tree and its order, body offsets, geom shapes, sizes and densities,
and each joint's PD gains (its `stiffness` and `damping`) and armature. Everything else is this project's:
hinges driven by position actuators (kp = stiffness, joint damping = kd, so the damping is integrated
implicitly), collision bitmasks (no self-collision by default), the ball and its bounce, and solver sizes for
MuJoCo Warp. The outputs are committed; `tests/test_model.py` checks they match this script.

Hands (`HANDS`): every variant keeps all 53 bodies, in the same order, with the same geoms; only finger hinges go.
    full        every joint three hinges, x, y and z (156 hinges; humanoid_ball.xml)
    anatomical  knuckles two hinges (y, z), the middle and tip joints one (z), the thumb's base three and its
                other two joints one (x) (108 hinges)
    hinge1      one hinge per finger joint (knuckles z), the thumb's base three (100 hinges)
    rigid       no finger hinges: the 30 finger bodies fixed on the palm, flat (the data's median pose; 66 hinges)
A variant's file is humanoid_ball_<hand>.xml.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET

BALL_RADIUS = 0.12  # size-7 basketball (FIBA: circumference 749-780 mm)
BALL_MASS = 0.6  # kg (FIBA: 567-650 g)
# Thin spherical shell: I = 2/3 m r^2.
BALL_INERTIA = 2.0 / 3.0 * BALL_MASS * BALL_RADIUS**2
# Ball-floor contact as a damped spring in MuJoCo's direct form solref = (-stiffness, -damping), per unit of
# penetration and of velocity. At a 1/120 s step a stiffer spring makes the bounce depend on where in a step the
# ball lands; this one gives a restitution of 0.72-0.77 for drops of 0.5-3 m, and a drop from 1.8 m (bottom)
# rebounds to 1.30 m (top): FIBA asks for 1.2-1.4 m. tests/test_model.py measures it on both backends.
BALL_FLOOR_SOLREF = "-7500 -16"
# Hand geoms (wrist and fingers) list a contact from this far away but push only on overlap: margin = gap, as MuJoCo 3
# reads them (listed within margin, pushing within margin - gap). MuJoCo 4 lists within margin + gap and pushes within
# margin, so skillmimic.model.load_model sets the hands' margin to Physics.hand_margin (0) and keeps this gap
# (the file is kept as it is: policy files record its hash). The
# data's hand-ball contact labels come from approximate mocap, and in the dataset's own poses the labelled hands
# are within 1.6 cm of the ball in 95% of the labelled frames, while unlabelled hands are beyond 1.8 cm in 95%.
HAND_CONTACT_MARGIN = 0.015
WRISTS = ("L_Wrist", "R_Wrist")
PHYSICS_DT = 1.0 / 120.0

HANDS = ("full", "anatomical", "hinge1", "rigid")
KNUCKLES = ("Index1", "Middle1", "Pinky1", "Ring1")
FINGER_OUTER = ("Index2", "Index3", "Middle2", "Middle3", "Pinky2", "Pinky3", "Ring2", "Ring3")
THUMB = ("Thumb1", "Thumb2", "Thumb3")
# The hinges each finger joint keeps (by name without the side, the same on both hands; a joint not listed keeps
# x, y and z). Chosen from BallPlay-M (all 101 clips, 14,826 frames): each joint's exp map decomposed into the
# model's intrinsic x-y-z angles (skillmimic.model.expmap_to_dof), the variance of each angle summed over the two
# hands, and the mean angle between the joint's rotation and the rotation of the kept hinges alone:
#   knuckles: z carries 79-90% of the variance (flexion, 1st-99th percentile range 1.4-2.0 rad), y the rest
#     (spread, 0.6-1.0 rad), x none (< 0.01 rad). Keeping z alone is 3.1-4.1 degrees off on average, y and z
#     0.03 degrees.
#   middle and tip joints: z only (x and y stay within 0.01 rad): z alone is 0.03 degrees off.
#   thumb: all three angles move about equally in every thumb joint (no axis holds over 47% of the variance, in
#     any direction); x has the largest variance in the middle and tip joints (0.051 vs z 0.050, and 0.227 vs
#     0.210 rad^2) and is the closest single hinge (4.2 and 7.9 degrees off on average against 4.2-9.0 for y
#     or z), so the base keeps all three and the others keep x.
FINGER_HINGES = {
    "full": {},
    "anatomical": {**{k: "yz" for k in KNUCKLES}, **{k: "z" for k in FINGER_OUTER}, "Thumb2": "x", "Thumb3": "x"},
    "hinge1": {**{k: "z" for k in KNUCKLES + FINGER_OUTER}, "Thumb2": "x", "Thumb3": "x"},
    "rigid": {k: "" for k in KNUCKLES + FINGER_OUTER + THUMB},
}
# The rigid hand's finger pose, written as each finger body's `quat` (w x y z; with no hinges left, a body's frame
# is its parent's moved by `pos` and turned by `quat`, as the hinges would turn it): flat, every finger joint at its
# zero rotation. It is the data's median finger pose: 74% of BallPlay-M's frames (62 of the 101 clips throughout:
# every catch, pickup, shot and layup clip) hold every finger joint exactly at zero, so for each joint the flat
# hand is the rotation with the smallest mean angle to the data. Measured over all frames against the alternatives
# tried: fingertip bodies 0.98 cm from the full hand's forward kinematics on average (the chordal mean pose, 2-8
# degrees of flexion per joint: 1.41 cm; the mean of the curled frames: 2.98 cm), and the shallowest hand-ball
# overlap at reference-state init (labelled frames: 13 mm deep on average, and the ball 0.82 m/s off its reference
# velocity after one step, against 17 mm and 0.88 m/s for the mean pose and 19.5 mm and 0.97 m/s for the full hand,
# whose curled data fingers dig into the ball). The ball stays holdable: hand-ball contact agrees with the label in
# 94.8% of all frames (full hand 95.8%, mean pose 94.9%) and in 154 of the layup's 161, as with the full hand.
RIGID_FINGER_QUAT = (1.0, 0.0, 0.0, 0.0)


def file_name(hand: str) -> str:
    """The committed file of a hand under skillmimic/assets/ (skillmimic.model reads the same names)."""
    return "humanoid_ball.xml" if hand == "full" else f"humanoid_ball_{hand}.xml"


def kept_hinges(body: str, hand: str) -> str:
    """The hinge axes ('xyz', 'yz', 'z', 'x' or '') that the joint of `body` keeps in this hand."""
    return FINGER_HINGES[hand].get(body[2:] if body[:2] in ("L_", "R_") else body, "xyz")


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split()]


def _geom(g: ET.Element, indent: str) -> str:
    kind = g.get("type", "capsule")
    density = g.get("density") or "1000"
    attrs = [f'type="{kind}"', f'density="{float(density):.6g}"']
    if g.get("fromto"):
        attrs.append(f'fromto="{_fmt(_floats(g.get("fromto")))}"')
    if g.get("pos"):
        pos = _floats(g.get("pos"))
        if any(abs(p) > 0 for p in pos):
            attrs.append(f'pos="{_fmt(pos)}"')
    attrs.append(f'size="{_fmt(_floats(g.get("size")))}"')
    quat = g.get("quat")
    if quat and _floats(quat) != [1.0, 0.0, 0.0, 0.0]:
        attrs.append(f'quat="{_fmt(_floats(quat))}"')
    return f"{indent}<geom {' '.join(attrs)}/>"


def _body(b: ET.Element, depth: int, out: list[str], actuators: list[str], hand: str) -> None:
    ind = "  " * depth
    name = b.get("name")
    pos = _floats(b.get("pos", "0 0 0"))
    keep = kept_hinges(name, hand)
    if name == "Pelvis":
        out.append(f'{ind}<body name="{name}" pos="0 0 1" childclass="humanoid">')
        out.append(f'{ind}  <freejoint name="root"/>')
    elif name in WRISTS:
        out.append(f'{ind}<body name="{name}" pos="{_fmt(pos)}" childclass="hand">')
    elif not keep:
        out.append(f'{ind}<body name="{name}" pos="{_fmt(pos)}" quat="{_fmt(RIGID_FINGER_QUAT)}">')
    else:
        out.append(f'{ind}<body name="{name}" pos="{_fmt(pos)}">')
    for j in b.findall("joint"):
        jname = j.get("name")
        if jname[-1] not in keep:
            continue
        kp, kd = float(j.get("stiffness")), float(j.get("damping"))
        out.append(
            f'{ind}  <joint name="{jname}" axis="{_fmt(_floats(j.get("axis")))}" damping="{kd:g}" '
            f'armature="{float(j.get("armature", "0.02")):g}"/>'
        )
        actuators.append(f'    <position name="{jname}" joint="{jname}" kp="{kp:g}"/>')
    for g in b.findall("geom"):
        out.append(_geom(g, ind + "  "))
    for child in b.findall("body"):
        _body(child, depth + 1, out, actuators, hand)
    out.append(f"{ind}</body>")


def make_model(reference_path: str, hand: str = "full") -> str:
    if hand not in HANDS:
        raise ValueError(f"unknown hand {hand!r}; choose one of {', '.join(HANDS)}")
    root = ET.parse(reference_path).getroot()
    pelvis = root.find("worldbody").find("body")
    bodies: list[str] = []
    actuators: list[str] = []
    _body(pelvis, 2, bodies, actuators, hand)
    r = BALL_RADIUS
    return "\n".join(
        [
            "<!-- Generated by tools/make_model.py; edit that script, not this file. -->",
            f'<mujoco model="skillmimic_humanoid_ball{"" if hand == "full" else "_" + hand}">',
            '  <compiler angle="radian" autolimits="true"/>',
            # Eight Newton iterations: as good as converged (16 random dataset starts, 1 s of PD tracking: 0.01 mm
            # mean from a 100-iteration solve, and MuJoCo and MuJoCo Warp agree as closely as with ten); five are
            # 8% faster on the GPU but drift centimetres from the converged motion.
            f'  <option timestep="{PHYSICS_DT:.10f}" solver="Newton" iterations="8" ls_iterations="10" '
            'integrator="Euler"/>',
            '  <size memory="16M"/>',
            "  <statistic center=\"0 0 1\" extent=\"3\"/>",
            '  <visual><global offwidth="1280" offheight="720"/><quality shadowsize="4096"/>'
            '<headlight ambient="0.35 0.35 0.35" diffuse="0.5 0.5 0.5"/></visual>',
            "  <default>",
            '    <default class="humanoid">',
            # Humanoid geoms: contype 2 / conaffinity 1 collide with the floor and the ball but not with each
            # other; skillmimic.model.load_model(self_collision=True) sets conaffinity 3 to enable that.
            '      <geom contype="2" conaffinity="1" condim="1" friction="1 0.05 0.05" solref="0.015 1" '
            'solimp="0.9 0.99 0.003" rgba="0.75 0.6 0.5 1"/>',
            '      <joint type="hinge" limited="false"/>',
            '      <position ctrllimited="false" forcelimited="true" forcerange="-500 500"/>',
            f'      <default class="hand"><geom margin="{HAND_CONTACT_MARGIN:g}" gap="{HAND_CONTACT_MARGIN:g}"/>'
            "</default>",
            "    </default>",
            "  </default>",
            "  <asset>",
            '    <texture name="court" type="2d" builtin="checker" rgb1="0.75 0.55 0.35" rgb2="0.7 0.5 0.3" '
            'width="512" height="512"/>',
            '    <material name="court" texture="court" texrepeat="8 8" texuniform="true" reflectance="0.1"/>',
            '    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.5 0.6 0.7" rgb2="0.1 0.1 0.15" '
            'width="256" height="256"/>',
            '    <material name="ball" rgba="0.9 0.4 0.1 1"/>',
            "  </asset>",
            "  <worldbody>",
            '    <light name="sun" pos="0 0 6" dir="0 0 -1" directional="true" castshadow="true"/>',
            '    <geom name="floor" type="plane" size="0 0 0.1" material="court" contype="1" conaffinity="2" '
            'condim="3" friction="1 0.05 0.05"/>',
            *bodies,
            f'    <body name="ball" pos="0.5 0 {r:g}">',
            '      <freejoint name="ball"/>',
            f'      <inertial pos="0 0 0" mass="{BALL_MASS:g}" diaginertia="{_fmt([BALL_INERTIA] * 3)}"/>',
            # The ball touches the humanoid through the default contact, and the floor through the pair below.
            f'      <geom name="ball" type="sphere" size="{r:g}" material="ball" contype="1" conaffinity="2" '
            'condim="3" friction="1.2 0.05 0.05" solref="0.015 1" solimp="0.9 0.99 0.003"/>',
            "    </body>",
            "  </worldbody>",
            "  <contact>",
            # margin = gap: the contact is listed from 2 mm away (so a resting ball, which jitters by a fraction of a
            # millimetre, reads as touching the floor). Under MuJoCo 4 it also pushes from 2 mm away (see the hands
            # above); BALL_FLOOR_SOLREF's bounce was measured with that.
            f'    <pair name="ball_floor" geom1="ball" geom2="floor" condim="3" friction="0.8 0.8 0.05 0.0001 0.0001" '
            f'solref="{BALL_FLOOR_SOLREF}" solimp="0.9 0.95 0.001" margin="0.002" gap="0.002"/>',
            "  </contact>",
            "  <actuator>",
            *actuators,
            "  </actuator>",
            "</mujoco>",
            "",
        ]
    )


def main() -> None:
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] not in HANDS):
        sys.exit(f"usage: python tools/make_model.py REFERENCE.xml OUTPUT.xml [{'|'.join(HANDS)}]\n"
                 "       python tools/make_model.py REFERENCE.xml FOLDER/   (every hand, each in its own file)")
    if os.path.isdir(sys.argv[2]):
        jobs = [(h, os.path.join(sys.argv[2], file_name(h))) for h in HANDS]
    else:
        jobs = [(sys.argv[3] if len(sys.argv) == 4 else "full", sys.argv[2])]
    for hand, path in jobs:
        with open(path, "w") as f:
            f.write(make_model(sys.argv[1], hand))
        print(f"wrote {path} ({hand} hand)")


if __name__ == "__main__":
    main()
