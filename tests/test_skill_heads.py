"""An actor whose output layer is one per skill (train_llc.py --skill-heads; skillmimic.policy.SkillHeadsMLP): the
label's head acts, a file's actor is seated into heads without changing what it computes, the file records the
heads and every reader builds them, a run resumes exactly, and the wrong combinations are one line."""

import shutil
import sys

import pytest
import torch

from paths import DATA, ROOT
from scripts import run_python

sys.path.insert(0, str(ROOT))
import train_llc  # noqa: E402
from skillmimic import checkpoint, recipe, skills  # noqa: E402
from skillmimic.normalizer import EmpiricalNormalization  # noqa: E402
from skillmimic.policy import (POLICY_FORMAT, SkillHeadsMLP, actor_hidden, actor_network, load_policy,  # noqa: E402
                               policy_file, skill_heads_of)

N_OBS, HIDDEN, N_ACT = 100, (16, 8), 66  # a small network: the one-hot is the observation's last 64 columns
FAST = ["--num-envs", "4", "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "2", "--device", "cpu",
        "--checkpoint-every", "1", "--hidden", "64", "64", "--warm-start-steps", "20"]


def _obs(labels: list[int], seed: int = 0) -> torch.Tensor:
    """Normalised observations (len(labels), N_OBS) of the given skill labels: random state, the one-hot's label
    column positive and the others negative or 0, as a normaliser leaves them."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(labels), N_OBS, generator=g)
    hot = torch.zeros(len(labels), skills.NUM_SLOTS)
    hot[:, :] = -torch.rand(len(labels), skills.NUM_SLOTS, generator=g) * 0.5
    hot[torch.arange(len(labels)), torch.tensor(labels)] = 2.0
    x[:, -skills.NUM_SLOTS:] = hot
    return x


def test_the_labels_head_acts_and_alone_gets_the_gradient():
    torch.manual_seed(0)
    net = actor_network(N_OBS, HIDDEN, N_ACT, N_OBS, [1, 13, 31])
    assert isinstance(net, SkillHeadsMLP) and actor_hidden(net) == HIDDEN and skill_heads_of(net) == [1, 13, 31]
    x = _obs([1, 13, 31, 2, 45])
    before = net(x)
    with torch.no_grad():  # heads start equal: the network is a plain one until they learn apart
        net[-1].weight[1] += 1.0  # 013's head
    moved = (net(x) - before).abs().sum(-1) > 0
    assert moved.tolist() == [False, True, False, False, False]
    net.zero_grad()
    net(x[3:]).sum().backward()  # labels 002 and 045: no head of their own, the shared one (last)
    grads = net[-1].weight.grad.abs().sum((1, 2))
    assert grads[:3].tolist() == [0.0, 0.0, 0.0] and grads[3] > 0
    with pytest.raises(ValueError, match="each label once"):
        actor_network(N_OBS, HIDDEN, N_ACT, N_OBS, [1, 1])


@pytest.mark.parametrize("file_heads", [None, [13, 1]])
def test_seating_keeps_what_the_files_actor_computes_for_every_label(file_heads):
    torch.manual_seed(1)
    file_actor = actor_network(N_OBS, HIDDEN, N_ACT, N_OBS, file_heads)
    if file_heads is not None:
        with torch.no_grad():  # heads that learned apart
            file_actor[-1].weight.add_(torch.randn_like(file_actor[-1].weight))
    run_heads = (file_heads or []) + [lab for lab in (1, 13, 31) if lab not in (file_heads or [])]
    run_actor = actor_network(N_OBS, HIDDEN, N_ACT, N_OBS, run_heads)
    run_actor.load_state_dict(recipe.seat_heads(file_actor.state_dict(), HIDDEN, file_heads, run_heads))
    x = _obs([1, 13, 31, 2, 45, 1])
    # 031 is new to a file of heads: its shared head's. (All heads in one product: equal to float rounding.)
    torch.testing.assert_close(run_actor(x), file_actor(x), rtol=1e-5, atol=1e-7)


def test_the_file_records_the_heads_and_loading_builds_them(tmp_path):
    torch.manual_seed(2)
    actor = actor_network(N_OBS, HIDDEN, N_ACT, N_OBS, [1, 13])
    norm = EmpiricalNormalization(N_OBS)
    contents = policy_file(actor, norm, N_OBS, N_ACT, HIDDEN, 1.0, 1.0, hand="rigid", model_sha256=None)
    assert contents["skill_heads"] == [1, 13]
    checkpoint.save_atomic(contents, tmp_path / "heads.pt")
    policy = load_policy(tmp_path / "heads.pt")
    x = _obs([1, 13, 2])
    assert skill_heads_of(policy.actor) == [1, 13] and torch.equal(policy.actor(x), actor(x))  # the same weights
    for bad in ([1, 1], [64], [], "13", [True]):
        checkpoint.save_atomic(dict(contents, skill_heads=bad), tmp_path / "bad.pt")
        with pytest.raises(checkpoint.CheckpointError, match="is not a list of distinct skill labels"):
            load_policy(tmp_path / "bad.pt")
    plain = policy_file(actor_network(N_OBS, HIDDEN, N_ACT, N_OBS), norm, N_OBS, N_ACT, HIDDEN, 1.0, 1.0,
                        hand="rigid", model_sha256=None)
    assert "skill_heads" not in plain  # files of one output layer stay as they were


def _run(*args, cwd=ROOT):
    return run_python(ROOT / "train_llc.py", *args, cwd=cwd)


def _one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def two_skills(tmp_path_factory):
    """A motion folder of two skills (the layup and a shot) and a plain two-iteration run on it."""
    d = tmp_path_factory.mktemp("two_skills")
    (d / "clips").mkdir()
    for f in ("layup/031_015pickle_layup_001_001.pt", "shot_style1/005_014pickle_shot_001.pt"):
        shutil.copy(DATA / f, d / "clips")
    r = _run(*FAST, "--motion-dir", d / "clips", "--iterations", "2", "--run-dir", d / "plain")
    assert r.returncode == 0, r.stderr
    return d


def test_a_run_of_skill_heads_writes_them_resumes_exactly_and_is_evaluated(two_skills, tmp_path):
    clips = two_skills / "clips"
    a, b = tmp_path / "a", tmp_path / "b"
    for run, its in ((a, 3), (b, 2)):
        r = _run(*FAST, "--motion-dir", clips, "--skill-heads", "--iterations", its, "--run-dir", run)
        assert r.returncode == 0, r.stderr
    assert checkpoint.load(b / "policy.pt", POLICY_FORMAT)["skill_heads"] == [5, 31]
    r = _run(*FAST, "--iterations", "3", "--resume", b / "checkpoint.pt")
    assert r.returncode == 0, r.stderr
    ca = checkpoint.load(a / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    cb = checkpoint.load(b / "checkpoint.pt", train_llc.TRAIN_FORMAT)
    for k, v in ca["agent"].items():
        assert torch.equal(v, cb["agent"][k]), k  # resumed = uninterrupted, to the bit (CPU)
    r = run_python("-m", "skillmimic.evaluate", "--checkpoint", a / "policy.pt", "--motion-dir", clips, "--episodes",
                   "1", "--horizon", "2", "--device", "cpu")
    assert r.returncode == 0 and "005 shot" in r.stdout and "031 layup" in r.stdout, r.stderr


def test_a_plain_file_continues_with_its_output_layer_in_every_head(two_skills, tmp_path):
    plain = two_skills / "plain" / "policy.pt"
    r = _run(*FAST, "--motion-dir", two_skills / "clips", "--skill-heads", "--iterations", "1", "--run-dir",
             tmp_path / "h", "--init-from", plain, "--critic-warmup-iterations", "1")
    assert r.returncode == 0 and "its output layer copied into each skill's head" in r.stdout, r.stderr
    file_actor = checkpoint.load(plain, POLICY_FORMAT)["actor"]
    run = checkpoint.load(tmp_path / "h" / "checkpoint.pt", train_llc.TRAIN_FORMAT)["agent"]
    assert run["actor.4.weight"].shape == (3, 66, 64)  # 005, 031 and the shared head
    for head in range(3):  # the critic alone learned in the run's one iteration
        assert torch.equal(run["actor.4.weight"][head], file_actor["4.weight"])
        assert torch.equal(run["actor.4.bias"][head], file_actor["4.bias"])
    # ... and a file of heads does not continue in a run of one output layer.
    line = _one_line(_run(*FAST, "--motion-dir", two_skills / "clips", "--iterations", "1", "--run-dir",
                          tmp_path / "p", "--init-from", tmp_path / "h" / "policy.pt"))
    assert line.endswith("its actor has an output layer for each skill (005, 031); continue it with --skill-heads")


def test_a_new_run_of_one_skill_is_refused_skill_heads(tmp_path):
    line = _one_line(_run(*FAST, "--skill-heads", "--iterations", "1", "--run-dir", tmp_path / "one"))
    assert line.endswith("--skill-heads: the clips hold one skill (031): no label to choose a head by; drop the flag, "
                         "or start from a file of several skills (--init-from)")
    assert not (tmp_path / "one").exists()
