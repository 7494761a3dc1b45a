"""Command lines: a dataclass of arguments parsed by tyro, with `--config FILE.yaml` for named experiments.

The YAML file sets defaults (its keys are the dataclass's field names, with `_` or `-`); flags given on the
command line override it. An unknown key, or a file that is missing or not a mapping, is a one-line error.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Sequence, TypeVar

import tyro
import yaml

T = TypeVar("T")


def load_config(cls: type[T], path: str | Path) -> T:
    """An instance of dataclass `cls` with the values of the YAML file at `path` over its defaults. A mapping
    under the name of a dataclass-valued field (`env: {fall_distance: 0.4}`) sets fields of that dataclass."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"{path}: no such config file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SystemExit(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise SystemExit(f"{path}: expected a mapping of argument names to values")
    return merge(cls(), values, path)


def merge(base: T, values: dict, source: str | Path, prefix: str = "") -> T:
    """base (a dataclass instance) with `values` over it, recursing into dataclass-valued fields; `source`
    names where the values came from in the error for an unknown key."""
    fields = {f.name for f in dataclasses.fields(base)}
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise SystemExit(f"{source}: unknown key(s) {', '.join(prefix + u for u in unknown)}; "
                         f"known: {', '.join(sorted(prefix + f for f in fields))}")
    for k, v in values.items():
        current = getattr(base, k)
        if dataclasses.is_dataclass(current) and isinstance(v, dict):
            values[k] = merge(current, v, source, f"{prefix}{k}.")
        elif isinstance(v, list):  # YAML lists become the tuples that tuple-typed fields expect
            values[k] = tuple(v)
    return dataclasses.replace(base, **values)


def parse(cls: type[T], args: Sequence[str] | None = None, description: str | None = None) -> T:
    """Parse the command line into `cls`, starting from `--config FILE.yaml` when one is given."""
    argv = list(sys.argv[1:] if args is None else args)
    default = None
    for i, a in enumerate(argv):
        if a == "--config" or a.startswith("--config="):
            path = a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
            if not path:
                raise SystemExit("--config needs a file name")
            del argv[i : i + (1 if "=" in a else 2)]
            default = load_config(cls, path)
            break
    return tyro.cli(cls, args=argv, default=default, description=description)
