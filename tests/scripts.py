"""The repository's scripts, tools and modules run as a user runs them: a child Python, its output captured."""

import os
import subprocess
import sys

from paths import ROOT


def importable_env(**extra: str) -> dict[str, str]:
    """This process's environment with the clone's root first on PYTHONPATH (its package importable from any folder),
    and `extra` set: the environment of a child run from another folder."""
    path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
    return dict(os.environ, PYTHONPATH=path, **extra)


def run_python(*argv, cwd=ROOT, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python ARGV...` (each item str()-ed: a script, `-m MODULE`, flags, Paths) in `cwd`, its stdout and stderr
    captured as text, killed after `timeout` seconds; `env` None: this process's environment, unchanged."""
    return subprocess.run([sys.executable, *map(str, argv)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
