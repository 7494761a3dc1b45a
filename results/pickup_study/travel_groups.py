"""Pickup success by how far the human walks to the ball in the clip (clips.json's root_travel) and whether the
ball moves at frame 0: where a student that sees no reference fails and its teacher does not (all-skills round 12).

    python results/pickup_study/travel_groups.py "YH round 12=results/skills12/YH_eval_3.json" \
        "B3 (teacher)=results/skills10/B3_eval.json"

Each argument NAME=EVAL.json, an evaluation with --per-clip on the pickup's clips (label 001). Groups: the ball
dribbled at frame 0 (the 009 clips), else still or moving at frame 0 (faster than 0.1 m/s) and near (the root
travels under 0.6 m over the clip) or far. Prints one Markdown row per evaluation: successes / episodes (clips).
"""
import json
import sys
from pathlib import Path

CLIPS = {c["clip"]: c for c in json.loads((Path(__file__).parent / "clips.json").read_text())}
GROUPS = ["still, near (< 0.6 m)", "still, far", "moving, far", "dribbled at frame 0"]


def clip_key(name: str) -> str:
    """A pickup clip's file name (001_007pickle_pick_000.pt, or its stem) -> its key in clips.json (007_000)."""
    return name.removeprefix("001_").removesuffix(".pt").replace("pickle_pick_", "_")


def group(clip: dict) -> str:
    if clip["clip"].startswith("009"):
        return GROUPS[3]
    if clip["ball_speed0"] < 0.1:
        return GROUPS[0] if clip["root_travel"] < 0.6 else GROUPS[1]
    return GROUPS[2] if clip["root_travel"] >= 0.6 else "moving, near"


def by_group(path: str) -> dict[str, list[float]]:
    """{group: [successes, episodes, clips]} of the pickup's clips in one evaluation."""
    pickup = next(s for s in json.loads(Path(path).read_text())["skills"] if s["label"] == "001")
    out: dict[str, list[float]] = {}
    for c in pickup["clips"]:
        g = out.setdefault(group(CLIPS[clip_key(c["clip"])]), [0.0, 0, 0])
        g[0] += c["success"] * c["episodes"]
        g[1] += c["episodes"]
        g[2] += 1
    return out


if __name__ == "__main__":
    runs = [a.rpartition("=")[::2] for a in sys.argv[1:]]
    print("| evaluation | " + " | ".join(GROUPS) + " |")
    print("|---|" + "---|" * len(GROUPS))
    for name, path in runs:
        g = by_group(path)
        cells = [f"{g[k][0]:.0f} / {g[k][1]} ({g[k][2]} clips)" if k in g else "-" for k in GROUPS]
        print(f"| {name or path} | " + " | ".join(cells) + " |")
