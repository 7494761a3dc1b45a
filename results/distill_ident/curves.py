"""Held-out (and train) distance per epoch from the fit logs of results/distill_ident (one skill per run, so the
printed mean held-out distance is that skill's); writes curves.json and prints the markdown table.

    python results/distill_ident/curves.py
"""
import json
import re
from pathlib import Path

HERE = Path(__file__).parent
EPOCH = re.compile(r"fit: epoch (\d+)/\d+  train ([\d.]+)  held-out ([\d.]+)")
BEFORE = re.compile(r"before -> after: \d+ ([\d.]+) ->")
curves = {}
for log in sorted(HERE.glob("*_lr*.log")):
    text = log.read_text()
    before = BEFORE.search(text)
    rows = {int(m[1]): (float(m[2]), float(m[3])) for m in EPOCH.finditer(text)}
    curves[log.stem] = {"before": float(before[1]) if before else None,
                        "train": [rows[e][0] for e in sorted(rows)], "held_out": [rows[e][1] for e in sorted(rows)]}
(HERE / "curves.json").write_text(json.dumps(curves, indent=1) + "\n")
print("| run | before | 1 | 10 | 30 | 60 | train at 60 |\n|---|---|---|---|---|---|---|")
for name, c in curves.items():
    h = c["held_out"]
    at = [f"{h[e - 1]:.5f}" if len(h) >= e else "-" for e in (1, 10, 30, 60)]
    tr = f"{c['train'][59]:.5f}" if len(c["train"]) >= 60 else "-"
    b = f"{c['before']:.5f}" if c["before"] is not None else "-"
    print(f"| {name} | {b} | " + " | ".join(at) + f" | {tr} |")
