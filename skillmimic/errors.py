"""A user's mistake: a flag, a file or a setting that cannot work, as opposed to a bug.

Every command prints one (through `skillmimic.cli.run`) as a single line, `error: MESSAGE`, on stderr and exits
with `status` (2, as argparse does for a bad command line); the message names the flag or file and the problem.
Anything else that escapes a command is a bug and keeps its traceback.
"""

import math


class UserError(ValueError):
    """Something the user asked for cannot be done; the message names the flag or file and the problem."""

    status = 2


def check_finite_nonnegative(value: float, what: str, must: str) -> None:
    """Refuse, in one line `{what} {value}: must be {must}`, a value that is not 0 or a finite positive number
    (NaN and infinity included)."""
    if not (value >= 0.0 and math.isfinite(value)):
        raise UserError(f"{what} {value}: must be {must}")
