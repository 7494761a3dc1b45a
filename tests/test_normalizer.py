import torch

from skillmimic.normalizer import EmpiricalNormalization


def test_running_statistics_match_the_whole_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 3, generator=g) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -1.0, 0.0])
    norm = EmpiricalNormalization(3)
    for chunk in x.split(137):
        norm(chunk)
    assert torch.allclose(norm.mean, x.mean(0), atol=1e-5)
    assert torch.allclose(norm.var, x.var(0, unbiased=False), rtol=1e-4)
    y = norm(x)
    assert torch.allclose(y.mean(0), torch.zeros(3), atol=1e-2) and torch.allclose(y.std(0), torch.ones(3), atol=1e-2)


def test_eval_mode_freezes_and_state_dict_carries_the_statistics():
    norm = EmpiricalNormalization(2)
    norm(torch.tensor([[1.0, 2.0], [3.0, 6.0]]))
    norm.eval()
    before = norm.mean.clone()
    norm(torch.tensor([[100.0, 100.0]]))
    assert torch.equal(norm.mean, before)
    other = EmpiricalNormalization(2)
    other.load_state_dict(norm.state_dict())
    assert torch.equal(other.mean, norm.mean) and torch.equal(other.var, norm.var) and other.count == 2
    assert torch.allclose(other.denormalize(other.normalize(torch.tensor([[2.0, 4.0]]))), torch.tensor([[2.0, 4.0]]))
