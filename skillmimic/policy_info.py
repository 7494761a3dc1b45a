"""What a skill policy file records, one value printed for a shell script (tools/layup_continue.sh):

    python -m skillmimic.policy_info runs/llc/policy.pt mass_curriculum_step
    -> 14000    (the control step its run's mass curriculum stood at; 0: none recorded)

The file is read as every checkpoint is (skillmimic.checkpoint: tensors only, its format checked), not as a policy
to drive (no model check: the run the script starts checks the file itself). A missing or malformed file, or an
unknown key, is one line on stderr, `error: ...`, and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from skillmimic import checkpoint
from skillmimic.cli import run_guarded
from skillmimic.envs.assist import recorded_step
from skillmimic.errors import UserError
from skillmimic.policy import POLICY_FORMAT


def mass_curriculum_step(path: str | Path) -> int:
    """The control step the mass curriculum of the run that wrote the policy file at `path` stood at when it did
    (its "mass_curriculum" entry: envs/assist.py, MassCurriculum.record); 0 for a file without one."""
    info = checkpoint.load(path, POLICY_FORMAT)
    return recorded_step(info.get("mass_curriculum"), str(path))


KEYS = {"mass_curriculum_step": mass_curriculum_step}
"""What can be asked of a file, by name."""


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in KEYS:
        raise UserError(f"usage: python -m skillmimic.policy_info POLICY.pt KEY (KEY: {', '.join(KEYS)})")
    print(KEYS[argv[1]](argv[0]))


if __name__ == "__main__":
    run_guarded(lambda: main(sys.argv[1:]))
