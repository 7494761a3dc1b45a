import math
import warnings

import pytest
import torch

from skillmimic import model as M
from skillmimic import rewards as R
from skillmimic import rotations

N, B = 3, M.NUM_BODIES
HAND = torch.zeros(B, dtype=torch.bool)
HAND[list(M.LEFT_HAND) + list(M.RIGHT_HAND)] = True
FEET = torch.zeros(B, dtype=torch.bool)
FEET[list(M.FEET)] = True


def _state(seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(N, B, 4, generator=g)
    return dict(
        body_pos=torch.randn(N, B, 3, generator=g),
        body_quat=q / q.norm(dim=-1, keepdim=True),
        dof_vel=torch.randn(N, 156, generator=g),
        ball_pos=torch.randn(N, 3, generator=g),
        ball_vel=torch.randn(N, 3, generator=g),
    )


def _reward(sim, ref, contact=None, w=None):
    contact = contact or dict(hand_ball=torch.tensor([[False, True]] * N),
                              body_ball=torch.zeros(N, B, dtype=torch.bool), body_floor=FEET.expand(N, B).clone(),
                              ref_contact=torch.ones(N))
    return R.hoi_reward(**sim, **contact, **{f"ref_{k}": v for k, v in ref.items()}, hand_mask=HAND,
                        floor_allowed=FEET, w=w or R.weights(R.RewardConfig(jv=0.1, ov=0.5)))


def test_perfect_match_gives_one():
    s = _state()
    reward, terms = _reward(s, s)
    assert reward.shape == (N,) and set(terms) == {"p", "r", "jv", "op", "ov", "ig", "cg"}
    assert torch.allclose(reward, torch.ones(N), atol=1e-6)
    for t in terms.values():
        assert t.shape == (N,) and torch.allclose(t, torch.ones(N), atol=1e-6)


@pytest.mark.parametrize("key, term", [("body_pos", "p"), ("dof_vel", "jv"), ("ball_pos", "op"), ("ball_vel", "ov")])
def test_each_term_falls_as_its_error_grows(key, term):
    ref = _state()
    values = []
    for scale in (0.0, 0.05, 0.1, 0.3):
        sim = {k: v.clone() for k, v in ref.items()}
        sim[key] = sim[key] + scale
        values.append(_reward(sim, ref)[1][term])
    for a, b in zip(values, values[1:]):
        assert (b < a).all()
    assert torch.allclose(values[0], torch.ones(N))


def test_rotation_term_is_a_true_rotation_distance():
    ref = _state()
    sim = {k: v.clone() for k, v in ref.items()}
    sim["body_quat"] = -ref["body_quat"]  # the same rotations
    assert torch.allclose(_reward(sim, ref)[1]["r"], torch.ones(N), atol=1e-6)
    turn = rotations.quat_from_expmap(torch.tensor([0.0, 0.0, math.pi / 2]))
    sim["body_quat"] = rotations.quat_mul(turn.expand(N, B, 4), ref["body_quat"])
    expected = math.exp(-20.0 * (math.pi / 2) ** 2)
    assert torch.allclose(_reward(sim, ref)[1]["r"], torch.full((N,), expected), rtol=1e-4)


def test_interaction_graph_sees_bodies_from_the_ball():
    ref = _state()
    sim = {k: v.clone() for k, v in ref.items()}
    shift = torch.tensor([1.0, -2.0, 0.5])
    sim["body_pos"] = ref["body_pos"] + shift  # everything moved together: the graph is unchanged ...
    sim["ball_pos"] = ref["ball_pos"] + shift
    assert torch.allclose(_reward(sim, ref)[1]["ig"], torch.ones(N), atol=1e-5)
    sim["ball_pos"] = ref["ball_pos"]  # ... the ball left behind: it is not
    assert (_reward(sim, ref)[1]["ig"] < 1e-3).all()


def test_contact_graph_edges():
    s = _state()
    base = dict(hand_ball=torch.tensor([[False, True], [False, False], [True, False]]),
                body_ball=torch.zeros(N, B, dtype=torch.bool), body_floor=FEET.expand(N, B).clone(),
                ref_contact=torch.tensor([1.0, 1.0, 0.0]))
    cg = _reward(s, s, base)[1]["cg"]
    # world 0 right; world 1 misses the labelled contact; world 2 holds the ball the label says is free.
    assert torch.allclose(cg, torch.tensor([1.0, math.exp(-5.0), math.exp(-5.0)]))
    bad = {k: v.clone() for k, v in base.items()}
    bad["body_ball"][0, M.BODY_NAMES.index("Head")] = True  # a header
    bad["body_floor"][0, M.BODY_NAMES.index("L_Knee")] = True  # and a knee on the floor: still one forbidden edge
    assert torch.allclose(_reward(s, s, bad)[1]["cg"][0], torch.tensor(math.exp(-5.0)))
    ok = {k: v.clone() for k, v in base.items()}
    ok["body_ball"][0, M.RIGHT_HAND[3]] = True  # a finger on the ball is allowed
    assert torch.allclose(_reward(s, s, ok)[1]["cg"][0], torch.tensor(1.0))


def test_weights_come_from_config_and_zero_switches_a_term_off():
    ref = _state()
    sim = {k: v + 0.2 for k, v in ref.items()}
    sim["body_quat"] = ref["body_quat"]
    w = R.weights(R.RewardConfig(p=0.0, r=0.0, jv=0.0, op=0.0, ov=0.0, ig=0.0, cg1=0.0, cg2=0.0))
    assert torch.allclose(_reward(sim, ref, w=w)[0], torch.ones(N))
    assert R.weights(R.RewardConfig()) == {"p": 20.0, "r": 20.0, "jv": 0.0, "op": 1.0, "ov": 0.0, "ig": 20.0,
                                           "cg1": 5.0, "cg2": 5.0}


def test_reward_functions_script():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(R.hoi_reward)
    s = _state()
    contact = dict(hand_ball=torch.tensor([[False, True]] * N), body_ball=torch.zeros(N, B, dtype=torch.bool),
                   body_floor=FEET.expand(N, B).clone(), ref_contact=torch.ones(N))
    a = scripted(s["body_pos"], s["body_quat"], s["dof_vel"], s["ball_pos"], s["ball_vel"], contact["hand_ball"],
                 contact["body_ball"], contact["body_floor"], s["body_pos"], s["body_quat"], s["dof_vel"],
                 s["ball_pos"], s["ball_vel"], contact["ref_contact"], HAND, FEET, R.weights(R.RewardConfig()))
    assert torch.allclose(a[0], torch.ones(N), atol=1e-6)
