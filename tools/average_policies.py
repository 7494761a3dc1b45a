"""Average the weights of skill policy files of one lineage ("model soup"): the actor's and the critic's parameters,
and the normalisers' means and variances, each the plain mean over the files; everything else from the first file.

    python tools/average_policies.py OUT.pt A_policy.pt B_policy.pt [--weights 1 1]

Why: round 13 (docs/llc_recipe.md, "All skills, round 13") read the 19-skill student's pickup at 42% after one
piece of training and 19% after the next (CPU, three seeds each), while its distance to the teacher did not move:
successive files of one run scatter around what they learn. Files continued from one file stay close in weight
space, where their mean is a policy too (Wortsman et al., "Model soups", 2022); whether it performs better than each
is for an evaluation to say.

The files must agree on what the weights mean: format, observation and action sizes, hidden layers, hand, skill
heads, skill labels, history steps, the critic's inputs, physics and ball starts; a file that does not is refused in
one line naming it and the entry. The output records `averaged_from` (each file's path, sha256 and weight) and keeps
the first file's `history` (its lineage; the others share it up to where they parted). Written atomically.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch
import tyro

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from skillmimic import checkpoint  # noqa: E402
from skillmimic.cli import run_command  # noqa: E402
from skillmimic.errors import UserError  # noqa: E402
from skillmimic.llc_link import file_sha256  # noqa: E402
from skillmimic.policy import POLICY_FORMAT  # noqa: E402

SAME = ("format", "num_obs", "num_actions", "hidden", "hand", "skill_heads", "skill_labels", "history_steps",
        "critic_reference", "physics", "ball_starts", "action_scale", "action_clip")
"""Entries every file must hold alike: the weights' meaning."""
NETS = ("actor", "critic")
"""State dicts averaged parameter by parameter."""
NORMS = ("obs_norm", "value_norm", "ref_norm")
"""Normalisers: mean and var averaged, count the largest."""


def average(files: list[dict], weights: list[float], names: list[str]) -> dict:
    """The weighted mean of the policies `files` (their contents, as loaded), named `names` in messages."""
    first = files[0]
    for name, f in zip(names[1:], files[1:]):
        for key in SAME:
            if f.get(key) != first.get(key):
                raise UserError(f"{name}: its {key} ({f.get(key)!r}) is not {names[0]}'s ({first.get(key)!r}): "
                                "only files of one lineage average")
        for key in (*NETS, *NORMS):
            if (key in f) != (key in first):
                raise UserError(f"{name}: it {'holds' if key in f else 'lacks'} a {key}, {names[0]} does not")
            if key in f and {k: tuple(v.shape) for k, v in f[key].items()} != \
                    {k: tuple(v.shape) for k, v in first[key].items()}:
                raise UserError(f"{name}: its {key}'s shapes differ from {names[0]}'s")
    total = float(sum(weights))

    def mean(tensors) -> torch.Tensor:
        """The weighted mean of one tensor of every file, in the first file's dtype."""
        tensors = list(tensors)
        return (sum(w * t.double() for w, t in zip(weights, tensors)) / total).to(tensors[0].dtype)

    out = dict(first)
    for key in NETS:
        if key in first:
            out[key] = {p: mean(f[key][p] for f in files) for p in first[key]}
    for key in NORMS:
        if key in first:
            out[key] = {"mean": mean(f[key]["mean"] for f in files), "var": mean(f[key]["var"] for f in files),
                        "count": max((f[key]["count"] for f in files), key=float)}
    return out


@dataclasses.dataclass
class Args:
    out: tyro.conf.Positional[str]
    """The averaged policy file to write."""
    files: tyro.conf.Positional[tuple[str, ...]]
    """Policy files of one lineage (train_llc.py's policy.pt), at least two."""
    weights: tuple[float, ...] = ()
    """One weight a file (default: equal)."""


def main(args: Args) -> None:
    if len(args.files) < 2:
        raise UserError("name at least two policy files to average")
    weights = list(args.weights) or [1.0] * len(args.files)
    if len(weights) != len(args.files):
        raise UserError(f"--weights: {len(weights)} weights for {len(args.files)} files")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise UserError("--weights: each at least 0 and their sum above 0")
    out = Path(args.out)
    if out.resolve() in {Path(f).resolve() for f in args.files}:
        raise UserError(f"{args.out}: the output would overwrite one of the files averaged")
    if not out.parent.is_dir():
        raise UserError(f"{args.out}: its folder {out.parent} does not exist")
    files = []
    for name in args.files:
        if not Path(name).is_file():
            raise UserError(f"{name}: no such file")
        files.append(checkpoint.load(name, POLICY_FORMAT))  # a policy file, or one line saying what it is
    averaged = average(files, weights, list(args.files))
    averaged["averaged_from"] = [{"file": str(n), "sha256": file_sha256(n), "weight": w}
                                 for n, w in zip(args.files, weights)]
    checkpoint.save_atomic(averaged, out)
    print(f"{out}: the mean of {len(files)} policy files (weights {', '.join(f'{w:g}' for w in weights)})")


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
