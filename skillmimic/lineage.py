"""A skill policy's whole training, across runs joined by --init-from: the samples and iterations of every run
that led to it and the policy files it came from, so that a file tells what it took without the README's help.

A policy file (train_llc.py's policy.pt) holds `iteration` and `samples` of the run that wrote it and, since this
module, `history`: {"samples", "iterations"} in all, "from" (the files it started from, oldest first: their path,
sha256, and the iteration and samples each file itself recorded) and "complete" (False when a file in the chain
recorded no history of its own, so the totals count only what is known: at least that much). A training checkpoint
holds `history_before`, what came before its run, so that a resumed run carries it on.
"""

from __future__ import annotations

from typing import Any

from skillmimic.llc_link import file_sha256

NEW = {"samples": 0, "iterations": 0, "from": [], "complete": True}
"""The history before a run started from scratch."""


def before(resume: dict | None, init_from: str | None, init: dict | None) -> dict:
    """What came before this run: a resumed run's own record; a new run's --init-from policy (`init`, the file's
    contents) with its history; else nothing (NEW). A checkpoint written before histories were kept, of a run
    started --init-from, gives an incomplete record naming the file."""
    if resume is not None:
        if "history_before" in resume:
            return resume["history_before"]
        started_from = resume.get("args", {}).get("init_from")
        return NEW if not started_from else {**NEW, "from": [{"file": started_from}], "complete": False}
    if init_from is None or init is None:
        return NEW
    entry = {"file": str(init_from), "sha256": file_sha256(init_from), "iteration": init.get("iteration"),
             "samples": init.get("samples")}
    own = init.get("history")
    if own is not None:
        return {"samples": own["samples"], "iterations": own["iterations"], "from": [*own["from"], entry],
                "complete": own["complete"]}
    # A file without a history: its own run's numbers, and no claim about what came before that run.
    return {"samples": init.get("samples") or 0, "iterations": init.get("iteration") or 0, "from": [entry],
            "complete": False}


def total(history_before: dict, iteration: int, samples: int) -> dict:
    """The history of a policy taken at `iteration` and `samples` of a run whose history before it is given."""
    return {**history_before, "samples": history_before["samples"] + samples,
            "iterations": history_before["iterations"] + iteration}


def describe(info: dict[str, Any]) -> str:
    """One line on a policy file's training, from its entries (policy.info): its run's iteration and samples and,
    when it records a history of several runs, the totals and the files before it. Claims no more than the file
    holds."""
    if "iteration" not in info:
        return "the file does not record its training"
    own = f"iteration {info['iteration']:,}, {info.get('samples') or 0:,} samples"
    history = info.get("history")
    if history is None:
        return f"{own} (of the run that wrote it; the file records no policy that run started from)"
    if not history["from"]:
        return f"{own}, a run started from scratch"
    files = [str(f["file"]) for f in reversed(history["from"])]  # the newest first
    chain = files[0] + "".join(f", itself from {f}" for f in files[1:])
    if history["complete"]:
        return f"{own} in its run; {history['samples']:,} samples and {history['iterations']:,} iterations in all, " \
               f"started from {chain}"
    return (f"{own} in its run; at least {history['samples']:,} samples and {history['iterations']:,} iterations in "
            f"all, started from {chain} (which records nothing before its own run)")
