"""The skill policy's network, and loading an exported policy (runs/.../policy.pt) to act with it.

A skill policy file records the model it was trained on: the hand ("hand") and the sha256 of its MJCF
("model_sha256"). Loading checks them against this checkout's file of that hand, so a policy never drives a model
it was not trained on; files from before hands were recorded are full-hand policies (no hash to check). It also
records the physical options it was trained with ("physics": the ball's mass, the palm, the hands' margin, the
wrists' gains, the ball's restitution and rolling resistance on the floor; skillmimic.model.Physics; absent in
older files: Physics.from_dict's defaults), with which the evaluation and play.py simulate it, and whether its
reference ball before the first contact was the fitted one ("ball_starts": EnvConfig.ball_starts; absent in older
files: False), which the evaluation and play.py then follow too. It records the
control steps of the policy's own past it observes ("history_steps", skillmimic.envs.history; absent in older
files: 0), with which every reader rebuilds its observation. A run with a mass curriculum records where it stood
("mass_curriculum": its start, steps, levels and the control step reached; skillmimic.envs.assist; absent without
one and in older files), which only a run continued from the file reads (--env.mass-curriculum.first-step,
skillmimic.policy_info).

A policy file may also carry the critic and the value normaliser ("critic", "value_norm"), so that a run started
from it (`train_llc.py --init-from`) continues with the values it had learned rather than a new critic. A critic that
also sees the reference motion (train_llc.py --critic-reference, skillmimic.envs.reference_obs) is recorded as such
("critic_reference": True; absent in older files: False) and comes with its reference normaliser ("ref_norm"). Only
--init-from reads them: the actor, its observation and everything the evaluation, play.py and the task environments
read are the same whatever the critic sees.

A teacher's actor may see the reference too (train_llc.py --actor-reference: "actor_reference": True; absent in
older files: False): it then acts on the observation followed by the reference features, normalised by the file's
"ref_norm" (and, where its reference looped past some clips' ends, "loops": envs/loops.py, which its evaluation
follows). Such a file is not a skill policy a label can drive: only the readers that have the reference (the
evaluation, distillation's --teachers, --init-from) ask load_policy for it (`reference`: the features they feed);
every other reader (play.py, the task environments, the switch evaluation, trace_episode) is refused it in one
line. A teacher trained on the reference laid onto its own position (train_llc.py --anchor-reference:
"reference_anchor": True; absent in older files: False) is fed it so by those readers
(skillmimic.envs.reference_obs.seen_by).

An actor may have its output layer one per skill (train_llc.py --skill-heads: "skill_heads", the labels that own a
head, in the heads' order; absent in older files: one output layer for all): SkillHeadsMLP, the head chosen by the
skill one-hot in its input, one more head shared by every other label. Every reader builds it from the file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from skillmimic import checkpoint, skills
from skillmimic import model as M
from skillmimic.errors import UserError
from skillmimic.normalizer import EmpiricalNormalization
from skillmimic.sticky import StickyActor, check_sticky

POLICY_FORMAT = "skillmimic-llc-policy/1"


def layer_init(layer: nn.Linear, std: float = math.sqrt(2), bias: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


def mlp(n_in: int, hidden: tuple[int, ...], n_out: int, out_std: float) -> nn.Sequential:
    """Linear-ELU layers of the given widths, orthogonally initialised; the last layer's scale is out_std."""
    layers: list[nn.Module] = []
    last = n_in
    for h in hidden:
        layers += [layer_init(nn.Linear(last, h)), nn.ELU()]
        last = h
    layers.append(layer_init(nn.Linear(last, n_out), std=out_std))
    return nn.Sequential(*layers)


class SkillLinear(nn.Module):
    """A linear layer with one weight and bias per head: a head for each skill label of `labels` (in that order) and
    one more, last, shared by every other label. Every head starts as the same orthogonally initialised layer (scale
    out_std), so that a network of them starts as a plain one would. x (B, n_in), slot (B,) each row's skill label
    -> (B, n_out)."""

    def __init__(self, n_in: int, n_out: int, labels: list[int], out_std: float):
        super().__init__()
        if len(set(labels)) != len(labels) or skills.outside_slots(labels):
            raise ValueError(f"skill heads {labels}: each label once, within the {skills.NUM_SLOTS} slots")
        self.labels = [int(lab) for lab in labels]
        layer = layer_init(nn.Linear(n_in, n_out), std=out_std)
        heads = len(labels) + 1
        self.weight = nn.Parameter(layer.weight.detach().repeat(heads, 1, 1))  # (H, n_out, n_in)
        self.bias = nn.Parameter(layer.bias.detach().repeat(heads, 1))  # (H, n_out)
        head_of_slot = torch.full((skills.NUM_SLOTS,), len(labels), dtype=torch.long)
        head_of_slot[self.labels] = torch.arange(len(labels))
        self.register_buffer("head_of_slot", head_of_slot, persistent=False)  # of the labels (the file's entry)
        self.in_features, self.out_features = n_in, n_out

    def forward(self, x: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        heads, n_out, n_in = self.weight.shape
        every = (x @ self.weight.reshape(heads * n_out, n_in).t()).view(-1, heads, n_out) + self.bias  # (B, H, n_out)
        head = self.head_of_slot[slot]  # (B,)
        return every.gather(1, head.view(-1, 1, 1).expand(-1, 1, n_out)).squeeze(1)


class SkillHeadsMLP(nn.Sequential):
    """mlp's network with its output layer a SkillLinear (train_llc.py --skill-heads), the head chosen by the skill
    one-hot at input columns [first, first + skills.NUM_SLOTS) (the observation's last: skillmimic.envs.observations).
    The input is normalised: the label's column is (1 - mean) / std >= 0 and every other column (0 - mean) / std
    <= 0, so the largest is the label's; all are 0 only where training held every one-hot column constant (one skill
    from the start, which train_llc.py refuses the option). x (B, n_in) -> (B, n_out). Its layers are numbered as
    mlp's (0 the first Linear), so what reads a plain actor's first layer reads this one's."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int, out_std: float, labels: list[int], first: int):
        layers: list[nn.Module] = []
        last = n_in
        for h in hidden:
            layers += [layer_init(nn.Linear(last, h)), nn.ELU()]
            last = h
        super().__init__(*layers, SkillLinear(last, n_out, labels, out_std))
        self.first = first

    @property
    def labels(self) -> list[int]:
        return self[-1].labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slot = x[:, self.first : self.first + skills.NUM_SLOTS].argmax(-1)  # (B,)
        h = x
        for layer in list(self)[:-1]:
            h = layer(h)
        return self[-1](h, slot)


def actor_network(n_in: int, hidden: tuple[int, ...], n_out: int, num_obs: int,
                  skill_heads: list[int] | None = None) -> nn.Sequential:
    """A skill policy's actor: mlp (output scale 0.01), or with skill_heads (the labels that own a head) a
    SkillHeadsMLP reading the one-hot at the end of the num_obs observation columns (the reference, for a teacher,
    comes after them)."""
    if skill_heads is None:
        return mlp(n_in, hidden, n_out, out_std=0.01)
    return SkillHeadsMLP(n_in, hidden, n_out, 0.01, skill_heads, num_obs - skills.NUM_SLOTS)


def actor_hidden(actor: nn.Sequential) -> tuple[int, ...]:
    """The hidden widths of an actor of actor_network."""
    widths = tuple(m.out_features for m in actor if isinstance(m, (nn.Linear, SkillLinear)))
    return widths[:-1]


def skill_heads_of(actor: nn.Module) -> list[int] | None:
    """The labels that own a head of an actor of actor_network; None for one output layer."""
    return list(actor.labels) if isinstance(actor, SkillHeadsMLP) else None


class SkillPolicy(nn.Module):
    """A trained skill policy: observation (B, num_obs) -> PD-target actions (B, num_actions), the Gaussian's
    mean (deterministic), with the observation normaliser it was trained with, for the model of `hand` whose MJCF
    has the sha256 `model_sha256` (None: not recorded), observing its own past `history_steps` control steps; with
    num_reference > 0 (a teacher, train_llc.py --actor-reference) it also sees that many reference features
    (skillmimic.envs.reference_obs) after the observation, normalised by ref_norm (None without them); with
    skill_heads (the labels that own one) its output layer is one per skill (SkillHeadsMLP)."""

    def __init__(self, num_obs: int, num_actions: int, hidden: tuple[int, ...], action_scale: float,
                 action_clip: float, hand: str = "full", model_sha256: str | None = None, history_steps: int = 0,
                 num_reference: int = 0, skill_heads: list[int] | None = None):
        super().__init__()
        self.obs_norm = EmpiricalNormalization(num_obs)
        self.actor = actor_network(num_obs + num_reference, hidden, num_actions, num_obs, skill_heads)
        self.num_reference = num_reference
        self.ref_norm = EmpiricalNormalization(num_reference) if num_reference else None
        self.num_obs, self.num_actions = num_obs, num_actions
        self.action_scale, self.action_clip = action_scale, action_clip
        self.hand, self.model_sha256 = hand, model_sha256
        self.history_steps = history_steps
        self.reference_anchor = False  # the file's "reference_anchor": fed the reference anchored (load_policy)
        self.physics = M.Physics()  # the file's "physics", set by load_policy
        self.ball_starts = False  # the file's "ball_starts" (the reference it was trained on), set by load_policy
        self.info: dict = {}  # the file's other plain entries (skill_labels, iteration, samples, ...)
        # the file's critic, value normaliser (and reference normaliser) state dicts, when it carries them
        self.critic_state: dict = {}
        self.path: Path | None = None  # the file it was read from (load_policy)

    @torch.no_grad()
    def forward(self, obs: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        """obs (B, num_obs), and for a teacher that sees the reference ref (B, num_reference) (the environment's
        reference_obs(), as this policy sees it: envs.reference_obs.seen_by) -> action means (B, num_actions)."""
        obs_n = self.obs_norm.normalize(obs)
        if self.ref_norm is None:
            return self.actor(obs_n)
        if ref is None:
            raise ValueError("this policy's actor sees the reference motion: pass ref (envs reference_obs())")
        return self.actor(torch.cat((obs_n, self.ref_norm.normalize(ref)), dim=-1))


def policy_file(actor: nn.Module, obs_norm: EmpiricalNormalization, num_obs: int, num_actions: int,
                hidden: tuple[int, ...], action_scale: float, action_clip: float, *, hand: str,
                model_sha256: str | None, history_steps: int = 0, **extra) -> dict:
    """The contents of an exported policy file (what load_policy reads), with any extra plain entries; hand and
    model_sha256 name the model it was trained on (skillmimic.model.ModelSpec's hand and sha256), history_steps
    the past control steps it observes (skillmimic.envs.history); an actor with skill heads records their labels."""
    return {"format": POLICY_FORMAT, "num_obs": num_obs, "num_actions": num_actions, "hidden": list(hidden),
            "action_scale": action_scale, "action_clip": action_clip, "hand": hand, "model_sha256": model_sha256,
            "history_steps": history_steps, "actor": actor.state_dict(), "obs_norm": obs_norm.state_dict(),
            **({"skill_heads": skill_heads_of(actor)} if skill_heads_of(actor) is not None else {}), **extra}


def save_policy(policy: SkillPolicy, path: str | Path) -> None:
    """Write a SkillPolicy as an exported policy file."""
    hidden = actor_hidden(policy.actor)
    reference = ({"actor_reference": True, "ref_norm": policy.ref_norm.state_dict(),
                  **({"reference_anchor": True} if policy.reference_anchor else {})}
                 if policy.ref_norm is not None else {})
    checkpoint.save_atomic(policy_file(policy.actor, policy.obs_norm, policy.num_obs, policy.num_actions, hidden,
                                       policy.action_scale, policy.action_clip, hand=policy.hand,
                                       model_sha256=policy.model_sha256, history_steps=policy.history_steps,
                                       **reference), path)


def check_model(path: str | Path, hand: str, model_sha256: str | None, num_actions: int,
                want_hand: str | None = None) -> M.ModelSpec:
    """The model that a file (a policy or a checkpoint) trained on the hand `hand` needs, as this checkout has it:
    want_hand's (default: the file's own). A file of another hand, of another MJCF of its hand (the sha256
    differs; None skips this check) or of another action count is a one-line CheckpointError naming both."""
    if hand not in M.HANDS:
        raise checkpoint.CheckpointError(f"{path}: trained on an unknown hand {hand!r} "
                                         f"(known: {', '.join(M.HANDS)})")
    spec = M.load_spec(want_hand or hand)
    if hand != spec.hand or model_sha256 not in (None, spec.sha256) or num_actions != spec.num_dofs:
        recorded = model_sha256[:12] if model_sha256 else "not recorded"
        raise checkpoint.CheckpointError(
            f"{path}: trained on the {hand} hand ({num_actions} actions, MJCF sha256 {recorded}); this model is the "
            f"{spec.hand} hand ({spec.num_dofs} actions, {spec.path.name} sha256 {spec.sha256[:12]})")
    return spec


def check_action_scale(policy: SkillPolicy, action_scale: float, name: str, other: str) -> None:
    """Refuse in one line a policy (`name`: the flag and file that named it) whose actions are scaled into PD targets
    otherwise than `other`'s (`action_scale`): the same actions would mean other targets (a teacher in
    distillation, skillmimic.distill, or in trace_episode)."""
    if policy.action_scale != action_scale:
        raise checkpoint.CheckpointError(f"{name}: its actions are scaled by {policy.action_scale}, {other} by "
                                         f"{action_scale}")


def load_policy(path: str | Path, device: str | torch.device = "cpu",
                num_obs: int | Callable[[int], int] | None = None, hand: str | None = None,
                flag: str | None = None, reference: int = 0) -> SkillPolicy:
    """Read an exported policy; with num_obs, check that it fits the environment it will drive: num_obs is the
    observation size, or the size for the past steps the file observes (skillmimic.envs.observations.skill_obs_dim:
    the environment that rebuilds its observation from the file). The policy runs on the model it was trained on
    (its `hand`; a file without one is a full-hand policy), which must be this checkout's file of that hand; with
    `hand`, it must also be that hand. Errors start with `flag` (the option that named the file) when given. A file
    whose actor sees the reference motion (a teacher, train_llc.py --actor-reference) is read only by a reader that
    feeds it `reference` features (skillmimic.envs.reference_obs's count), if it sees that many, and refused in one
    line by any other."""
    name = f"{flag}: {path}" if flag else str(path)
    ckpt = checkpoint.load(path, POLICY_FORMAT, map_location=device, name=name)
    sees_reference = ckpt.get("actor_reference", False) is True  # files before teachers did: False
    if sees_reference and not reference:
        raise checkpoint.CheckpointError(
            f"{name}: its actor sees the reference motion (a teacher, trained with --actor-reference), so a skill "
            "label alone cannot drive it: evaluate it (skillmimic.evaluate) or let it teach (--teachers)")
    if sees_reference and "ref_norm" not in ckpt:
        raise checkpoint.CheckpointError(f"{name}: its actor sees the reference motion but it has no ref_norm")
    num_reference = ckpt["ref_norm"]["mean"].shape[0] if sees_reference else 0
    if num_reference and num_reference != reference:  # another version of reference_obs
        raise checkpoint.CheckpointError(f"{name}: its actor sees {num_reference} reference features, this "
                                         f"checkout's are {reference} (skillmimic.envs.reference_obs)")
    steps = ckpt.get("history_steps", 0)  # files from before the history: none
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise checkpoint.CheckpointError(f"{name}: history_steps {steps!r} is not a count of control steps")
    if num_obs is not None:
        checkpoint.check_entries(ckpt, {"num_obs": num_obs(steps) if callable(num_obs) else num_obs}, name)
    policy_hand, sha = ckpt.get("hand", "full"), ckpt.get("model_sha256")
    check_model(name, policy_hand, sha, ckpt["num_actions"], hand)
    heads = ckpt.get("skill_heads")  # files before skill heads: one output layer
    if heads is not None and (not isinstance(heads, list) or not heads
                              or any(isinstance(h, bool) or not isinstance(h, int) for h in heads)
                              or skills.outside_slots(heads) or len(set(heads)) != len(heads)):
        raise checkpoint.CheckpointError(f"{name}: skill_heads {heads!r} is not a list of distinct skill labels "
                                         f"within the {skills.NUM_SLOTS} slots")
    policy = SkillPolicy(ckpt["num_obs"], ckpt["num_actions"], tuple(ckpt["hidden"]), ckpt["action_scale"],
                         ckpt["action_clip"], policy_hand, sha, steps, num_reference, heads)
    try:
        policy.physics = M.Physics.from_dict(ckpt.get("physics"))
    except TypeError as e:
        raise checkpoint.CheckpointError(f"{name}: unknown physical options {ckpt.get('physics')}: {e}") from None
    except ValueError as e:  # a value Physics refuses (skillmimic.errors.UserError)
        raise checkpoint.CheckpointError(f"{name}: {e}") from None
    anchored = ckpt.get("reference_anchor", False)  # files before --anchor-reference: the reference as it is
    if not isinstance(anchored, bool) or (anchored and not num_reference):
        raise checkpoint.CheckpointError(f"{name}: reference_anchor {anchored!r} is not true or false for an actor "
                                         "that sees the reference")
    policy.reference_anchor = anchored
    ball_starts = ckpt.get("ball_starts", False)  # files before fitted ball starts: off
    if not isinstance(ball_starts, bool):
        raise checkpoint.CheckpointError(f"{name}: ball_starts {ball_starts!r} is not true or false")
    policy.ball_starts = ball_starts
    policy.path = Path(path)
    return _fill(policy, ckpt, name, device)


def _fill(policy, ckpt: dict, path: str | Path, device: str | torch.device):
    """Load an exported file's actor and normaliser into policy; keep its other entries as policy.info."""
    weights = {k: ckpt[k] for k in ("actor", "obs_norm", "critic", "value_norm", "ref_norm") if k in ckpt}
    bad = checkpoint.non_finite(weights)
    if bad is not None:
        raise checkpoint.CheckpointError(f"{path}: refused: {bad} holds NaN or Inf (the run that wrote it diverged)")
    try:
        policy.actor.load_state_dict(ckpt["actor"])
        policy.obs_norm.load_state_dict(ckpt["obs_norm"])
        if getattr(policy, "ref_norm", None) is not None:  # a teacher that sees the reference (--actor-reference)
            policy.ref_norm.load_state_dict(ckpt["ref_norm"])
    except RuntimeError as e:
        raise checkpoint.CheckpointError(f"{path}: weights do not fit: {str(e).splitlines()[0][:160]}") from None
    policy.info = {k: v for k, v in ckpt.items() if k not in weights}
    policy.critic_state = {k: weights[k] for k in ("critic", "value_norm", "ref_norm") if k in weights}  # --init-from
    return policy.to(device).eval()


TASK_POLICY_FORMAT = "skillmimic-hlc-policy/1"


def task_actor(num_obs: int, num_actions: int, hidden: tuple[int, ...], sticky: float = 0.0) -> nn.Module:
    """A high-level actor: mlp (output scale 0.01) on the normalised observation, or with sticky = p > 0 a
    StickyActor that also sees the skill played last and starts keeping it with probability p + (1 - p) / A
    (skillmimic.sticky). Call it through task_logits."""
    if not sticky:
        return mlp(num_obs, hidden, num_actions, out_std=0.01)
    return StickyActor(mlp(num_obs + num_actions, hidden, num_actions, out_std=0.01), num_actions, sticky)


def task_logits(actor: nn.Module, obs_n: torch.Tensor, last: torch.Tensor | None) -> torch.Tensor:
    """A task_actor's logits (B, A) for the normalised observation obs_n (B, num_obs) and each world's last skill
    last (B,) long (-1: none; TaskEnv.last_skill), which only a sticky actor reads."""
    if isinstance(actor, StickyActor):
        if last is None:
            raise ValueError("this high-level policy sees the skill played last (--sticky): pass TaskEnv.last_skill")
        return actor(obs_n, last)
    return actor(obs_n)


def task_policy_file(actor: nn.Module, obs_norm: EmpiricalNormalization, num_obs: int, num_actions: int,
                     hidden: tuple[int, ...], *, task: str, skills: list[int], task_config: dict, llc_steps: int,
                     llc: str, llc_sha256: str, llc_path: str, hand: str, model_sha256: str | None,
                     sticky: float = 0.0, **extra) -> dict:
    """The contents of an exported high-level policy file (what load_task_policy reads), with any extra plain
    entries: the task it serves (its name, its skills in action order, its settings, and the control steps per
    decision), the skill policy it drives (`llc` as given, and skillmimic.llc_link's llc_sha256 and llc_path), the
    model both were trained on, and its actor's `sticky` (task_actor; absent in older files: 0)."""
    return {"format": TASK_POLICY_FORMAT, "num_obs": num_obs, "num_actions": num_actions, "hidden": list(hidden),
            "actor": actor.state_dict(), "obs_norm": obs_norm.state_dict(), "task": task, "skills": list(skills),
            "llc": llc, "hand": hand, "model_sha256": model_sha256, "llc_sha256": llc_sha256, "llc_path": llc_path,
            "task_config": task_config, "llc_steps": llc_steps, "sticky": sticky, **extra}


class TaskPolicy(nn.Module):
    """A trained high-level policy: observation (B, num_obs) and each world's last skill (B,) (TaskEnv.last_skill,
    read only by a sticky one) -> the index of the skill to play (B,), the most likely one, with the observation
    normaliser it was trained with."""

    def __init__(self, num_obs: int, num_actions: int, hidden: tuple[int, ...], sticky: float = 0.0):
        super().__init__()
        self.obs_norm = EmpiricalNormalization(num_obs)
        self.actor = task_actor(num_obs, num_actions, hidden, sticky)
        self.num_obs, self.num_actions, self.sticky = num_obs, num_actions, sticky
        self.info: dict = {}  # the file's other plain entries (task, skills, llc, llc_sha256, llc_path, iteration, ...)

    @torch.no_grad()
    def forward(self, obs: torch.Tensor, last: torch.Tensor | None = None) -> torch.Tensor:
        return task_logits(self.actor, self.obs_norm.normalize(obs), last).argmax(-1)


def load_task_policy(path: str | Path, device: str | torch.device = "cpu", task: str | None = None,
                     num_obs: int | None = None) -> TaskPolicy:
    """Read an exported high-level policy; with task / num_obs, check it was made for that task and model. The
    skill policy it drives is found and checked by skillmimic.llc_link.load_llc. A file without "sticky" (from
    before the option) is a plain actor."""
    expect = {k: v for k, v in (("task", task), ("num_obs", num_obs)) if v is not None}
    ckpt = checkpoint.load(path, TASK_POLICY_FORMAT, expect=expect or None, map_location=device)
    sticky = ckpt.get("sticky", 0.0)
    try:
        check_sticky(sticky, "sticky")
    except UserError as e:
        raise checkpoint.CheckpointError(f"{path}: {e}") from None
    policy = TaskPolicy(ckpt["num_obs"], ckpt["num_actions"], tuple(ckpt["hidden"]), float(sticky))
    return _fill(policy, ckpt, path, device)
