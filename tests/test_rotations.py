import math

import torch

from skillmimic import rotations as R


def _random_quat(n, gen):
    q = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    return q / q.norm(dim=-1, keepdim=True)


def test_expmap_quat_round_trip():
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(1000, 3, generator=gen, dtype=torch.float64)
    v = v / v.norm(dim=-1, keepdim=True) * torch.rand(1000, 1, generator=gen, dtype=torch.float64) * math.pi
    back = R.quat_to_expmap(R.quat_from_expmap(v))
    assert torch.allclose(back, v, atol=1e-9)
    tiny = torch.tensor([[1e-9, -2e-9, 3e-9]], dtype=torch.float64)
    assert torch.allclose(R.quat_to_expmap(R.quat_from_expmap(tiny)), tiny, atol=1e-15)


def test_euler_xyz_is_intrinsic_x_then_y_then_z():
    a, b, c = 0.3, -0.7, 1.1
    q = R.quat_from_euler_xyz(torch.tensor([a, b, c], dtype=torch.float64))
    rx = torch.tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]], dtype=torch.float64)
    ry = torch.tensor([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]], dtype=torch.float64)
    rz = torch.tensor([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]], dtype=torch.float64)
    assert torch.allclose(R.quat_to_matrix(q), rx @ ry @ rz, atol=1e-12)


def test_euler_round_trip_gives_the_same_rotation_also_at_gimbal_lock():
    gen = torch.Generator().manual_seed(1)
    q = _random_quat(2000, gen)
    locked = R.quat_from_euler_xyz(torch.tensor([[0.4, math.pi / 2, -0.9], [1.0, -math.pi / 2, 0.2]],
                                                dtype=torch.float64))
    q = torch.cat((q, locked))
    e = R.euler_xyz_from_quat(q)
    assert (e[:, 1].abs() <= math.pi / 2 + 1e-12).all()
    assert R.quat_angle(R.quat_from_euler_xyz(e), q).max() < 1e-6


def test_quat_angle_and_rotate():
    q = R.quat_from_expmap(torch.tensor([0.0, 0.0, math.pi / 2]))
    assert torch.allclose(R.quat_rotate(q, torch.tensor([1.0, 0.0, 0.0])), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    assert torch.allclose(R.quat_rotate_inverse(q, torch.tensor([0.0, 1.0, 0.0])), torch.tensor([1.0, 0.0, 0.0]),
                          atol=1e-6)
    ident = torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert abs(float(R.quat_angle(q, ident)) - math.pi / 2) < 1e-6
    assert abs(float(R.quat_angle(-q, ident)) - math.pi / 2) < 1e-6  # q and -q are one rotation
    w = R.angular_velocity(ident, q, 0.5)
    assert torch.allclose(w, torch.tensor([0.0, 0.0, math.pi]), atol=1e-5)


def test_every_function_scripts():
    import warnings

    names = ["quat_mul", "quat_conj", "quat_rotate", "quat_rotate_inverse", "quat_from_expmap", "quat_to_expmap",
             "quat_to_matrix", "euler_xyz_from_quat", "quat_from_euler_xyz", "quat_angle", "wrap_angle",
             "angular_velocity"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in torch 2.13
        for name in names:
            torch.jit.script(getattr(R, name))
