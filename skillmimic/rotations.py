"""Rotation math on torch tensors: pure functions, type-annotated so that `torch.jit.script` and `torch.compile`
take them (tests/test_rotations.py scripts them all).

Conventions (MuJoCo's): quaternions are (w, x, y, z), unit norm, and act on column vectors, so
`quat_mul(a, b)` is "first b, then a" when both map a local frame to its parent. Exponential maps are
axis * angle (radians). Batch dimensions lead: every function takes `(..., 4)` / `(..., 3)`.

The dataset stores each joint's local rotation as an exponential map. The model drives each joint with three
hinges about the body's x, y and z axes, applied in that order, each about the axis as already turned by the
hinges before it (MuJoCo composes a body's joints this way). So a joint's rotation is R = Rx(a) Ry(b) Rz(c):
intrinsic x-y-z Euler angles. `euler_xyz_from_quat` and `quat_from_euler_xyz` are the exact map between the
two, both ways; b lies in [-pi/2, pi/2], a and c in (-pi, pi].
"""

from __future__ import annotations

import torch


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b. Shapes (..., 4) -> (..., 4)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def quat_conj(q: torch.Tensor) -> torch.Tensor:
    """Conjugate (the inverse of a unit quaternion). (..., 4) -> (..., 4)."""
    return torch.cat((q[..., :1], -q[..., 1:]), dim=-1)


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v by unit quaternions q. q (..., 4), v (..., 3) -> (..., 3)."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v + w * t + torch.cross(u, t, dim=-1)


def quat_rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v by the inverse of q. q (..., 4), v (..., 3) -> (..., 3)."""
    return quat_rotate(quat_conj(q), v)


def quat_from_expmap(v: torch.Tensor) -> torch.Tensor:
    """Exponential map (axis * angle) -> unit quaternion. (..., 3) -> (..., 4)."""
    angle = torch.linalg.norm(v, dim=-1, keepdim=True)
    half = 0.5 * angle
    # sin(angle/2)/angle, with its Taylor series near zero so that tiny rotations stay exact.
    small = angle < 1e-6
    safe = torch.where(small, torch.ones_like(angle), angle)
    scale = torch.where(small, 0.5 - angle * angle / 48.0, torch.sin(half) / safe)
    return torch.cat((torch.cos(half), v * scale), dim=-1)


def quat_to_expmap(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternion -> exponential map with angle in [0, pi]. (..., 4) -> (..., 3)."""
    q = torch.where(q[..., :1] < 0, -q, q)  # the same rotation, with w >= 0, so the angle is at most pi
    s = torch.linalg.norm(q[..., 1:], dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(s, q[..., :1])
    small = s < 1e-6
    safe = torch.where(small, torch.ones_like(s), s)
    scale = torch.where(small, 2.0 + angle * angle / 12.0, angle / safe)
    return q[..., 1:] * scale


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternion -> rotation matrix. (..., 4) -> (..., 3, 3)."""
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ),
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def euler_xyz_from_quat(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternion -> intrinsic x-y-z angles (a, b, c) with R = Rx(a) Ry(b) Rz(c). (..., 4) -> (..., 3).

    From R = Rx(a) Ry(b) Rz(c): R02 = sin b, R12 = -sin a cos b, R22 = cos a cos b, R01 = -cos b sin c,
    R00 = cos b cos c. At gimbal lock (cos b = 0) only a + c or a - c is defined: c is set to 0 and a read from
    R21 = sin a, R11 = cos a, which is exact there.
    """
    m = quat_to_matrix(q)
    sb = m[..., 0, 2].clamp(-1.0, 1.0)
    b = torch.asin(sb)
    cb = torch.sqrt(m[..., 0, 0] ** 2 + m[..., 0, 1] ** 2)
    locked = cb < 1e-6
    a = torch.where(locked, torch.atan2(m[..., 2, 1], m[..., 1, 1]), torch.atan2(-m[..., 1, 2], m[..., 2, 2]))
    c = torch.where(locked, torch.zeros_like(b), torch.atan2(-m[..., 0, 1], m[..., 0, 0]))
    return torch.stack((a, b, c), dim=-1)


def quat_from_euler_xyz(e: torch.Tensor) -> torch.Tensor:
    """Intrinsic x-y-z angles (a, b, c) -> unit quaternion of Rx(a) Ry(b) Rz(c). (..., 3) -> (..., 4)."""
    zero = torch.zeros_like(e[..., 0])
    half = 0.5 * e
    c, s = torch.cos(half), torch.sin(half)
    qx = torch.stack((c[..., 0], s[..., 0], zero, zero), dim=-1)
    qy = torch.stack((c[..., 1], zero, s[..., 1], zero), dim=-1)
    qz = torch.stack((c[..., 2], zero, zero, s[..., 2]), dim=-1)
    return quat_mul(quat_mul(qx, qy), qz)


def expmap_to_euler_xyz(v: torch.Tensor) -> torch.Tensor:
    """Dataset joint triplet (exponential map) -> the model's three hinge angles. (..., 3) -> (..., 3)."""
    return euler_xyz_from_quat(quat_from_expmap(v))


def euler_xyz_to_expmap(e: torch.Tensor) -> torch.Tensor:
    """The model's three hinge angles -> exponential map. (..., 3) -> (..., 3)."""
    return quat_to_expmap(quat_from_euler_xyz(e))


def quat_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle in [0, pi] of the rotation that takes b to a: the geodesic distance. (..., 4) x2 -> (...)."""
    d = quat_mul(a, quat_conj(b))
    s = torch.linalg.norm(d[..., 1:], dim=-1)
    return 2.0 * torch.atan2(s, d[..., 0].abs())


def wrap_angle(x: torch.Tensor) -> torch.Tensor:
    """Map angles to [-pi, pi)."""
    return torch.remainder(x + torch.pi, 2.0 * torch.pi) - torch.pi


def angular_velocity(q0: torch.Tensor, q1: torch.Tensor, dt: float) -> torch.Tensor:
    """World-frame angular velocity that turns q0 into q1 in dt seconds. (..., 4) x2 -> (..., 3)."""
    return quat_to_expmap(quat_mul(q1, quat_conj(q0))) / dt


# The pelvis's forward axis in its own frame (the model's bodies are laid out with y up and z forward); the heading
# frame's x axis is this axis turned into the world and laid flat on the floor.
FORWARD = (0.0, 0.0, 1.0)


def heading(root_quat: torch.Tensor) -> torch.Tensor:
    """The root's heading: the angle about the vertical of its FORWARD axis laid on the floor (rad). (N, 4) -> (N,)."""
    forward = torch.tensor(FORWARD, device=root_quat.device, dtype=root_quat.dtype).expand(root_quat.shape[0], 3)
    fwd = quat_rotate(root_quat, forward)
    return torch.atan2(fwd[:, 1], fwd[:, 0])


def yaw_quat(angle: torch.Tensor) -> torch.Tensor:
    """The rotation by `angle` (rad) about the vertical. (N,) -> (N, 4) wxyz."""
    half = 0.5 * angle
    zero = torch.zeros_like(half)
    return torch.stack((torch.cos(half), zero, zero, torch.sin(half)), dim=-1)


def heading_inverse(root_quat: torch.Tensor) -> torch.Tensor:
    """Quaternion that turns world vectors into the heading frame. (N, 4) -> (N, 4)."""
    return yaw_quat(-heading(root_quat))
