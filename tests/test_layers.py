"""The package's layers: the core (simulator, data, model, rewards, normaliser, rotations) and the drawing
package viz/ import no environment, task or script, so they can be read and tested alone and imports run one
way (scripts -> envs -> tasks -> viz, core)."""

import ast

import pytest

from paths import ROOT

CORE = ["sim", "motion", "model", "rewards", "normalizer", "rotations", "device", "skills", "errors", "torchfile",
        "sticky"]
VIZ = sorted(p.stem for p in (ROOT / "skillmimic" / "viz").glob("*.py"))
UPWARD = ("skillmimic.envs", "skillmimic.tasks", "train_llc", "train_hlc", "play")


def _imports(path):
    """Every module name an import statement in the file names, at any depth (function-level imports too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


@pytest.mark.parametrize("module", CORE + [f"viz/{m}" for m in VIZ])  # pictures draw what tasks describe
def test_the_core_and_viz_import_no_environment_task_or_script(module):
    names = _imports(ROOT / "skillmimic" / f"{module}.py")
    upward = [n for n in names if n.startswith(UPWARD) or n in ("skillmimic.envs", "skillmimic.tasks")]
    assert not upward, f"skillmimic/{module}.py imports {upward}"


def test_viz_holds_the_drawing_modules():
    assert {"court", "render", "viewer", "video"} <= set(VIZ), VIZ
    assert not [m for m in ("court", "render", "viewer", "video") if (ROOT / "skillmimic" / f"{m}.py").exists()]


def test_the_normaliser_imports_only_torch():
    names = _imports(ROOT / "skillmimic" / "normalizer.py")
    assert all(n.split(".")[0] in ("__future__", "typing", "torch") for n in names), names


def test_tasks_do_not_import_the_environments():
    for path in (ROOT / "skillmimic" / "tasks").glob("*.py"):
        names = _imports(path)
        assert not [n for n in names if n.startswith("skillmimic.envs")], path
