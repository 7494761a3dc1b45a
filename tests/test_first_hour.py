"""A new user's first hour, read from the README itself so that an edit cannot silently break it: the install
commands as written (PyTorch's CPU wheel index for a machine without a GPU, the package with its test extra quoted
for zsh), the test command CI runs, and every command the README and the commands' own help show: each script or
module exists, each flag is one its --help lists, and each run folder read is one a command writes. Nothing is
installed or downloaded: the commands are parsed, and the scripts run with --help only."""

import ast
import os
import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec

import pytest
import yaml

from paths import ROOT
from scripts import importable_env, run_python

README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()
# The run folders the training scripts write by default (train_llc.py: runs/llc, train_hlc.py: runs/hlc).
DEFAULT_RUN_DIRS = {"runs/llc", "runs/hlc"}
# Flags whose value is a file a command reads, which lies in a run folder when it starts with runs/.
READS = ("--resume", "--checkpoint", "--llc", "--init-from")


def _section(title: str) -> str:
    """The README's text under `## title`, up to the next `## ` heading."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _bash_lines(text: str) -> list[str]:
    """The lines of the ```bash blocks in `text`, without blank lines."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def _code(line: str, quoted: bool = True) -> str:
    """A shell line before its comment; without `quoted`, only its characters outside quotes (what the shell
    expands as patterns)."""
    out, quote = [], None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
            if quoted:
                out.append(c)
        elif c in "'\"":
            quote = c
            if quoted:
                out.append(c)
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            break
        else:
            out.append(c)
    return "".join(out)


def test_the_install_commands_work_from_the_public_index_and_install_pytest():
    lines = [line for line in _bash_lines(_section("Install")) if line.startswith("pip install")]
    words = [shlex.split(line, comments=True) for line in lines]
    # No GPU: torch from PyTorch's own CPU wheel index, as PyTorch's install page gives it (PyPI's is CUDA's).
    assert ["pip", "install", "torch", "--index-url", "https://download.pytorch.org/whl/cpu"] in words, lines
    # The package with the extra that holds pytest, which the README's test command needs.
    package = [w for w in words if w[:3] == ["pip", "install", "-e"]]
    assert len(package) == 1 and package[0][3] == ".[test]", lines
    setup = ast.parse((ROOT / "setup.py").read_text())
    extras = next(k.value for n in ast.walk(setup) if isinstance(n, ast.Call)
                  for k in n.keywords if k.arg == "extras_require")
    assert "test" in ast.literal_eval(extras) and "pytest" in str(ast.literal_eval(extras)["test"])
    # zsh reads an unquoted [test] as a file pattern ("no matches found"): every bracket must be in quotes.
    for line in _bash_lines(README):
        assert not set("[]") & set(_code(line, quoted=False)), f"README: quote the brackets for zsh: {line}"
    # CI installs the same extra, as the README writes it.
    assert '-e ".[test]"' in CI


def test_the_readme_test_command_is_what_ci_runs():
    readme = [_code(line).strip() for line in _bash_lines(README) if "pytest" in _code(line)]
    ci = [line.strip() for line in CI.splitlines() if "pytest" in line and not line.lstrip().startswith("#")]
    assert len(readme) == 1 and ci == [readme[0]], (readme, ci)


def _commands(text: str) -> list[str]:
    """The python / torchrun commands of a text: its ```bash lines, its inline `python ...` spans (which may wrap
    over lines) and, in a docstring, its indented example lines."""
    found = [_code(line) for line in _bash_lines(text)]
    found += [" ".join(span.split()) for span in re.findall(r"`((?:python|torchrun) [^`]+)`", text)]
    found += [_code(line.strip()) for line in text.splitlines() if re.match(r"    (python|torchrun) ", line)]
    return [c for c in found if c.split()[:1] in (["python"], ["torchrun"])]


def _target(words: list[str]) -> tuple[str, list[str]] | None:
    """(the script or '-m module', its arguments) of a command's words; None for pytest (not ours)."""
    if words[0] == "torchrun":  # torchrun's own flags come before the script
        words = ["python", *words[next(i for i, w in enumerate(words) if w.endswith(".py")):]]
    if words[1] == "-m":
        return None if words[2] == "pytest" else (f"-m {words[2]}", words[3:])
    return words[1], words[2:]


def _texts() -> dict[str, str]:
    """Where commands are shown: the README, and the help (docstring) of each script and command module."""
    texts = {"README.md": README}
    for path in [*ROOT.glob("*.py"), *ROOT.glob("tools/*.py"), *ROOT.glob("skillmimic/**/*.py")]:
        doc = ast.get_docstring(ast.parse(path.read_text()), clean=False)
        if doc and _commands(doc):
            texts[str(path.relative_to(ROOT))] = doc
    return texts


def _help(target: str) -> subprocess.CompletedProcess:
    argv = target.split() if target.startswith("-m ") else [str(ROOT / target)]
    return run_python(*argv, "--help", timeout=300, env=importable_env())


@pytest.fixture(scope="module")
def documented():
    """Every documented command as (text, command, target, arguments), and each target's --help."""
    commands = []
    for name, text in _texts().items():
        for command in _commands(text):
            target = _target(shlex.split(command))
            if target is not None:
                commands.append((name, command, *target))
    flagged = sorted({t for _, _, t, args in commands if any(a.startswith("--") for a in args)})
    with ThreadPoolExecutor(max(2, min(4, os.cpu_count() or 2))) as pool:
        return commands, dict(zip(flagged, pool.map(_help, flagged)))


def test_every_documented_command_exists_and_takes_its_flags(documented):
    commands, helps = documented
    assert any(t == "train_llc.py" for _, _, t, _ in commands) and len(helps) >= 5  # the parsing found them
    for name, command, target, args in commands:
        if target.startswith("-m "):
            assert find_spec(target[3:]) is not None, f"{name}: no module {target[3:]}: {command}"
        else:
            assert (ROOT / target).is_file(), f"{name}: no script {target}: {command}"
        for flag in (a.split("=")[0] for a in args if a.startswith("--")):
            h = helps[target]
            assert h.returncode == 0, f"{target} --help: {h.stderr}"
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", h.stdout), \
                f"{name}: {target} has no {flag} (its --help does not list it): {command}"


def test_every_run_folder_a_documented_command_reads_is_one_a_command_of_that_text_writes(documented):
    """A reader who ran a text's training command finds the folder its other commands read: the scripts' default
    folders, a --run-dir, or the run_dir of a config the same text names."""
    commands, _ = documented
    written: dict[str, set[str]] = {}
    for name, text in _texts().items():
        folders = set(DEFAULT_RUN_DIRS)
        for config in set(re.findall(r"configs/[\w/]+\.yaml", text)):
            folders.add(str((yaml.safe_load((ROOT / config).read_text()) or {}).get("run_dir", "")))
        written[name] = folders
    for name, command, _, args in commands:
        written[name] |= {args[i + 1] for i, a in enumerate(args[:-1]) if a == "--run-dir"}
    for name, command, _, args in commands:
        for i, a in enumerate(args[:-1]):
            if a in READS and args[i + 1].startswith("runs/"):
                folder = "/".join(args[i + 1].split("/")[:2])
                assert folder in written[name], f"{name}: {a} {args[i + 1]}: no command there writes {folder}"


def test_every_result_file_the_readme_and_docs_name_exists():
    """results/ files cited by the README and docs/ (a placeholder in capitals, such as ARM or HAND, or roundN,
    stands for any name) lie where the text says."""
    texts = {"README.md": README, **{f"docs/{p.name}": p.read_text() for p in (ROOT / "docs").glob("*.md")}}
    for name, text in texts.items():
        for path in set(re.findall(r"results/[\w./*<>-]*[\w*/]", text)):
            pattern = re.sub(r"(?<![A-Za-z])[A-Z]{2,}(?![a-z])|(?<=round)N\b", "*", path)
            assert list(ROOT.glob(pattern)), f"{name}: {path} names no file"
