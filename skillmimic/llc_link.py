"""How a high-level policy names the skill policy it drives, finds it where it runs, and is relinked to another.

A high-level policy file (and train_hlc.py's training checkpoint) names its skill policy twice:
    llc_sha256  the sha256 of the skill policy file's bytes: which skill policy, wherever it lies;
    llc_path    where it lies: relative to the skillmimic package folder when the file is inside it
                ('assets/llc_policy.pt'), so a moved clone or an installed package finds its own copy; else the
                absolute path;
and keeps `llc`, the path as it was given at training (read by older code, and tried last).
Where it runs (play.py --task, skillmimic.evaluate_task, train_hlc.py --resume), the skill policy is `--llc` when
given, else llc_path (against this package when relative), else `llc`; its sha256 must be llc_sha256, or the
command stops with one line naming the file it needs and the file it found. Files written before llc_sha256 was
recorded are loaded from their `llc` path (or `--llc`) unchecked.

`python -m skillmimic.relink_hlc` rewrites a high-level policy to name another skill policy file (`relink`), refusing
one that does not fit it (another hand or model, other sizes, skills it did not learn).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from skillmimic import checkpoint
from skillmimic.checkpoint import CheckpointError
from skillmimic.envs.observations import skill_obs_dim
from skillmimic.policy import TASK_POLICY_FORMAT, SkillPolicy, TaskPolicy, load_policy

PACKAGE = Path(__file__).resolve().parent  # the package this code runs from: llc_path is relative to it
ASSETS = PACKAGE / "assets"
SHIPPED_LLC = ASSETS / "llc_policy.pt"
RELINK = "python -m skillmimic.relink_hlc"


def shipped_hlc(task: str) -> Path:
    """The high-level policy of `task` shipped with the package (trained on SHIPPED_LLC)."""
    return ASSETS / f"hlc_{task}.pt"


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def llc_reference(path: str | Path) -> dict:
    """What a high-level policy records of the skill policy at `path`: llc_sha256 and llc_path (module doc)."""
    path = Path(path).resolve()
    try:
        where = path.relative_to(PACKAGE).as_posix()
    except ValueError:  # outside the package
        where = str(path)
    return {"llc_sha256": file_sha256(path), "llc_path": where}


def find_llc(source: str | Path, info: dict, llc: str | Path | None = None, flag: str = "--llc") -> Path:
    """The skill policy file that the high-level policy (or training checkpoint) `source`, whose entries are
    `info`, drives: `llc` when given, else its llc_path (relative: in this package), else its recorded `llc`;
    the first of these whose sha256 is its llc_sha256. None is: a one-line CheckpointError naming the file it needs
    and the file found, and what to pass (`flag`). A file without llc_sha256 (written before it was recorded)
    gets `llc` or its recorded path, unchecked."""
    want = info.get("llc_sha256")
    if llc is not None:
        candidates = [Path(llc)]
    else:  # PACKAGE / an absolute llc_path is that path
        candidates = [PACKAGE / p for p in (info.get("llc_path"),) if p] + [Path(p) for p in (info.get("llc"),) if p]
    if not candidates:
        raise CheckpointError(f"{source}: names no skill policy: pass {flag} FILE")
    found = [p for p in dict.fromkeys(candidates) if p.is_file()]
    if want is None or llc is not None and not found:
        return candidates[0]  # unchecked, or missing: load_policy says so
    for p in found:
        if file_sha256(p) == want:
            return p
    needs = f"{source}: needs the skill policy {info.get('llc_path') or info.get('llc')} (sha256 {want[:12]})"
    if not found:
        raise CheckpointError(f"{needs}, not found at {' or '.join(map(str, candidates))}: pass {flag} FILE, the "
                              f"skill policy it was trained on")
    got = file_sha256(found[0])[:12]
    raise CheckpointError(f"{needs}; found {found[0]} (sha256 {got}), a different file: pass {flag} FILE, the skill "
                          f"policy it was trained on, or relink it to this one ({RELINK})")


def check_fits(source: str | Path, info: dict, llc: SkillPolicy, llc_path: str | Path) -> None:
    """Refuse, in one line, a skill policy that the high-level policy `source` (entries `info`) cannot drive: of
    another hand or MJCF than it was trained on, or lacking a skill it picks. (Its observation and action sizes
    are load_policy's to check: those of the skill observation and of its hand's model.)"""
    hand, sha = info.get("hand", "full"), info.get("model_sha256")
    if llc.hand != hand or (None not in (sha, llc.model_sha256) and sha != llc.model_sha256):
        ours = f"MJCF sha256 {sha[:12]}" if sha else "MJCF not recorded"
        theirs = f"MJCF sha256 {llc.model_sha256[:12]}" if llc.model_sha256 else "MJCF not recorded"
        raise CheckpointError(f"{llc_path}: a skill policy of the {llc.hand} hand ({theirs}); {source} was trained "
                              f"on the {hand} hand ({ours})")
    check_skills(llc, llc_path, info.get("skills", []), f"{source} picks ({info.get('task')} task)")


def check_skills(llc: SkillPolicy, llc_path: str | Path, skills: list[int], picker: str) -> None:
    """Refuse, in one line, a skill policy that did not learn one of `skills` (`picker` says who picks them). A
    policy that does not record what it learned (skill_labels) passes."""
    learned = llc.info.get("skill_labels")
    missing = [s for s in skills if learned is not None and s not in learned]
    if missing:
        raise CheckpointError(f"{llc_path}: did not learn skill(s) {', '.join(map(str, missing))}, which {picker}")


def load_task_llc(task: str, skills: list[int], path: str | Path, device: str | torch.device = "cpu",
                  hand: str | None = None, flag: str = "--llc") -> SkillPolicy:
    """The skill policy at `path` for a new high-level policy of `task`, whose actions are `skills`: refused in one
    line (naming `flag`) unless it is a skill policy of the skill observation's size (of `hand` when given) that
    learned every one of them, as load_llc refuses one for a trained high-level policy."""
    llc = load_policy(path, device, num_obs=skill_obs_dim, hand=hand, flag=flag)
    check_skills(llc, f"{flag}: {path}", skills, f"the {task} task picks")
    return llc


def load_llc(hlc: TaskPolicy, source: str | Path, llc: str | Path | None = None,
             device: str | torch.device = "cpu", hand: str | None = None,
             flag: str = "--llc") -> tuple[SkillPolicy, Path]:
    """The skill policy that the high-level policy `hlc`, read from `source`, drives, and its file (find_llc;
    `llc` overrides where to find it, `hand` what hand it must be of), checked to fit it."""
    path = find_llc(source, hlc.info, llc, flag)
    policy = load_policy(path, device, num_obs=skill_obs_dim, hand=hand)
    check_fits(source, hlc.info, policy, path)
    return policy, path


def relink(hlc_path: str | Path, llc_path: str | Path, out: str | Path) -> dict:
    """Write to `out` the high-level policy at `hlc_path`, naming the skill policy at `llc_path` (its llc_sha256,
    llc_path, and `llc` as given) and otherwise unchanged; refused in one line when that skill policy does not fit
    it (check_fits). -> the entries written."""
    ckpt = checkpoint.load(hlc_path, TASK_POLICY_FORMAT)
    llc = load_policy(llc_path, "cpu", num_obs=skill_obs_dim)
    check_fits(hlc_path, ckpt, llc, llc_path)
    ckpt.update(llc=str(llc_path), **llc_reference(llc_path))
    checkpoint.save_atomic(ckpt, out)
    return ckpt
