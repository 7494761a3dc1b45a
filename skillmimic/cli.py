"""Command lines: a dataclass of arguments parsed by tyro, with `--config FILE.yaml` for named experiments.

The YAML file sets defaults (its keys are the dataclass's field names, with `_` or `-`); flags given on the
command line override it. Each value is checked against its field's type (a number written `5e-5`, which YAML
reads as a string, is taken as the number). An unknown key, a value of the wrong type, or a file that is missing
or not a mapping is a one-line error.

`run_command(main, Args, __doc__)` is every command's entry point: a user's mistake (`skillmimic.errors.UserError`, a
bad checkpoint or clip, a file that cannot be read or written) ends the command with one line on stderr,
`error: ...`, and exit status 2; tracebacks are left to bugs. Ctrl-C is one line too, and exit status 130.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, TypeVar, Union

import tyro
import yaml

from skillmimic.errors import UserError

T = TypeVar("T")


def load_config(cls: type[T], path: str | Path) -> T:
    """An instance of dataclass `cls` with the values of the YAML file at `path` over its defaults. A mapping
    under the name of a dataclass-valued field (`env: {fall_distance: 0.4}`) sets fields of that dataclass."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a YAML file (a config is text; this file holds bytes that are not UTF-8 "
                        f"text)") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a mapping of argument names to values")
    return merge(cls(), values, path)


def merge(base: T, values: dict, source: str | Path, prefix: str = "") -> T:
    """base (a dataclass instance) with `values` over it, recursing into dataclass-valued fields; each value is
    checked against its field's type. `source` names where the values came from in the errors."""
    fields = {f.name for f in dataclasses.fields(base)}
    types_ = typing.get_type_hints(type(base), include_extras=True)
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise UserError(f"{source}: unknown key(s) {', '.join(prefix + u for u in unknown)}; "
                        f"known: {', '.join(sorted(prefix + f for f in fields))}")
    for k, v in values.items():
        current = getattr(base, k)
        if dataclasses.is_dataclass(current):
            if not isinstance(v, dict):
                raise UserError(f"{source}: {prefix}{k}: expected a mapping of its settings, got {v!r}")
            values[k] = merge(current, v, source, f"{prefix}{k}.")
        else:
            try:
                values[k] = _coerce(v, types_[k])
            except _Mismatch as e:
                raise UserError(f"{source}: {prefix}{k}: expected {e}, got {v!r}") from None
    return dataclasses.replace(base, **values)


class _Mismatch(Exception):
    """A value that does not fit a type; the message describes the type ('an integer')."""


def _coerce(value: Any, tp: Any) -> Any:
    """`value` (from YAML or a checkpoint's saved arguments) as field type `tp`, or _Mismatch."""
    origin, targs = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:  # tyro's markers (Positional, Suppress)
        return _coerce(value, targs[0])
    if origin in (Union, types.UnionType):
        if value is None and type(None) in targs:
            return None
        for t in targs:
            if t is not type(None):
                try:
                    return _coerce(value, t)
                except _Mismatch:
                    pass
        raise _Mismatch(" or ".join(_describe(t) for t in targs))
    if origin is Literal:
        if value in targs and not isinstance(value, bool):
            return value
        raise _Mismatch(_describe(tp))
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(_describe(tp))
        items = targs[:1] * len(value) if len(targs) == 2 and targs[1] is Ellipsis else targs
        if len(items) != len(value):
            raise _Mismatch(_describe(tp))
        try:
            return tuple(_coerce(v, t) for v, t in zip(value, items))
        except _Mismatch:
            raise _Mismatch(_describe(tp)) from None
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        number = _number(value)
        if isinstance(number, int) or isinstance(number, float) and number.is_integer():
            return int(number)
    elif tp is float:
        number = _number(value)
        if number is not None:
            return float(number)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # a type with no check here
        return value
    raise _Mismatch(_describe(tp))


def _number(value: Any) -> int | float | None:
    """An int or float, or a string that reads as one ('5e-5': YAML takes an exponent without a dot as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _describe(tp: Any) -> str:
    origin, targs = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _describe(targs[0])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in targs)
    if origin is tuple:
        return f"a list ({_describe(targs[0])} each)" if targs else "a list"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def parse(cls: type[T], args: Sequence[str] | None = None, description: str | None = None) -> T:
    """Parse the command line into `cls`, starting from `--config FILE.yaml` when one is given."""
    argv = list(sys.argv[1:] if args is None else args)
    default = None
    for i, a in enumerate(argv):
        if a == "--config" or a.startswith("--config="):
            path = a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
            if not path:
                raise UserError("--config needs a file name")
            del argv[i : i + (1 if "=" in a else 2)]
            default = load_config(cls, path)
            break
    # tyro explains a bad flag in a box of several lines on stderr; it becomes one line here (and the box's text
    # as it is, when it cannot be read).
    captured, failed = io.StringIO(), False
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(cls, args=argv, default=default, description=description, prog=_prog())
    except SystemExit as e:
        failed = e.code not in (0, None)
        if failed:
            raise UserError(_tyro_message(captured.getvalue())) from None
        raise
    finally:
        if not failed:
            sys.stderr.write(captured.getvalue())


def _tyro_message(text: str) -> str:
    """The first paragraph of the message in a tyro error: the text before the box's first rule (in a box), or
    between the title's rule and the next (without one)."""
    lines = [line.strip().strip("│").strip() for line in text.splitlines()]
    boxed = any(line.startswith("╭") for line in lines)
    lines = [line for line in lines if not line.startswith(("╭", "╰"))]
    rules = [i for i, line in enumerate(lines) if line and set(line) <= set("-─")] + [len(lines)] * 2
    paragraph: list[str] = []
    for line in lines[: rules[0]] if boxed else lines[rules[0] + 1 : rules[1]]:
        if line:
            paragraph.append(line)
        elif paragraph:
            break
    return f"{' '.join(paragraph)} (see --help)" if paragraph else text


def _prog() -> str | None:
    """How the command was started, for its usage line: `python -m skillmimic.evaluate` rather than the path of
    the module's file; None (the script's name) for a script."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return f"python -m {spec.name}" if spec is not None and spec.name.startswith("skillmimic.") else None


def check_counts(args: Any, *names: str, minimum: int = 1) -> None:
    """Refuse, naming the flag, a count that is below `minimum` (None, where a field allows it, is not checked;
    each entry of a tuple is)."""
    for name in names:
        value = getattr(args, name)
        for v in value if isinstance(value, tuple) else (value,):
            if v is not None and v < minimum:
                raise UserError(f"--{name.replace('_', '-')} {v}: must be at least {minimum}")


def run_command(main: Callable[[T], Any], cls: type[T], description: str | None = None) -> None:
    """A command's entry point: parse the command line into `cls` and call `main` with it. A user's mistake ends it
    with one line, `error: ...`, on stderr and exit status 2."""
    run_guarded(lambda: main(parse(cls, description=description)))


def run_guarded(body: Callable[[], Any]) -> None:
    """Run a command's body (run_command's, or a tool's own argument handling): a user's mistake, a file that
    cannot be read or written, or Ctrl-C ends it with one line on stderr and its exit status."""
    try:
        body()
    except UserError as e:  # also bad checkpoints and clips (CheckpointError, MotionError)
        _fail(str(e), e.status)
    except OSError as e:  # a file that cannot be read or written: its name and why
        if e.filename is None:
            raise
        _fail(f"{e.filename}: {e.strerror or e}", 2)
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (which saves and stops by itself), e.g. the warm start
        newline = "\n" if sys.stdout.isatty() else ""  # after a progress line, which a terminal keeps
        print(f"{newline}interrupted (Ctrl-C): stopped before finishing; nothing more was written", file=sys.stderr,
              flush=True)
        raise SystemExit(130) from None


def _fail(message: str, status: int) -> None:
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    raise SystemExit(status)
