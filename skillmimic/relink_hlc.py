"""Rewrite a high-level policy to name another skill policy file: by its sha256, and by its path relative to the
package when it lies inside it (skillmimic.llc_link).

    python -m skillmimic.relink_hlc runs/hlc/policy.pt --llc runs/llc/policy.pt      # in place
    python -m skillmimic.relink_hlc runs/hlc/policy.pt --out hlc_scoring.pt          # naming the shipped one

A skill policy that the high-level policy cannot drive (another hand or MJCF, other observation or action sizes,
a skill it picks that the skill policy did not learn) is refused in one line; nothing else in the file changes.
How the shipped high-level policies were made: each trained file relinked to skillmimic/assets/llc_policy.pt,
the skill policy it was trained on (the same bytes under another path), with --out skillmimic/assets/hlc_TASK.pt.
"""

from __future__ import annotations

import dataclasses

from tyro.conf import Positional

from skillmimic.cli import run_command
from skillmimic.llc_link import SHIPPED_LLC, relink


@dataclasses.dataclass
class Args:
    hlc: Positional[str]
    """The high-level policy (train_hlc.py's policy.pt)."""
    llc: str = str(SHIPPED_LLC)
    """The skill policy it is to name (default: the one shipped with the package)."""
    out: str | None = None
    """Where to write it (default: over the high-level policy, atomically)."""


def main(args: Args) -> None:
    out = args.out or args.hlc
    ckpt = relink(args.hlc, args.llc, out)
    print(f"wrote {out}: the {ckpt['task']} task's high-level policy, naming the skill policy {ckpt['llc_path']} "
          f"(sha256 {ckpt['llc_sha256'][:12]})")


if __name__ == "__main__":
    run_command(main, Args, description=__doc__)
