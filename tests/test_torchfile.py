"""skillmimic.torchfile: a file stored gzip-compressed under its own name (how the repository keeps a policy file
over 16 MiB) reads as the file itself; a damaged one is one sentence."""

import gzip

import pytest
import torch

from skillmimic import checkpoint, torchfile
from skillmimic.policy import load_policy, skill_heads_of


def test_a_gzip_compressed_file_reads_as_the_file(tmp_path):
    data = {"format": "x/1", "w": torch.arange(12.0).reshape(3, 4), "labels": [1, 13, 31]}
    plain, packed = tmp_path / "plain.pt", tmp_path / "packed.pt"
    torch.save(data, plain)
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    got = torchfile.load(packed)
    assert got.keys() == data.keys() and torch.equal(got["w"], data["w"]) and got["labels"] == [1, 13, 31]
    assert checkpoint.load(packed, "x/1")["labels"] == [1, 13, 31]


def test_a_cut_gzip_file_is_one_sentence(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save({"w": torch.zeros(100)}, tmp_path / "whole.pt")
    path.write_bytes(gzip.compress((tmp_path / "whole.pt").read_bytes())[:-40])
    with pytest.raises(torchfile.Unreadable, match="^a gzip-compressed file that does not decompress"):
        torchfile.load(path)


def test_gzipped_text_is_named_as_such(tmp_path):
    path = tmp_path / "config.pt"
    path.write_bytes(gzip.compress(b"num_envs: 8\nlr: 1e-4\n"))
    with pytest.raises(torchfile.Unreadable, match=r"^not a file that torch.save wrote \(21 bytes, text\)$"):
        torchfile.load(path)


def test_the_kept_skill_heads_policy_plays(tmp_path):
    """round 11's YH, kept compressed (16.8 MB as written): every reader builds its 20 heads from it."""
    policy = load_policy("results/skills11/YH_policy.pt")
    labels = [1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 23, 31, 34, 40, 41, 42, 43, 44, 45]
    assert skill_heads_of(policy.actor) == labels and policy.critic_state
    obs = torch.zeros(2, policy.num_obs)
    obs[0, policy.num_obs - 64 + 13] = obs[1, policy.num_obs - 64 + 31] = 1.0  # dribble forward, layup
    actions = policy(obs)
    assert actions.shape == (2, policy.num_actions) and torch.isfinite(actions).all()
    assert not torch.allclose(actions[0], actions[1])  # each label its own head
