#!/bin/bash
# The task diagnosis's runs (README.md here): scripted high-level controllers on the four tasks, the skill policy
# results/skills14/YH_policy.pt, 64 episodes each, plain MuJoCo on this project's 2-core CPU. The throwing runs name
# their height: 2.5 m was the task's default when they ran (2.9 m since; throwing_hlc_HT's file records 2.5 m).
# Run from the repository root: bash results/task_diagnosis/run.sh [NAME ...]  (default: all)
set -e
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
L=results/skills14/YH_policy.pt
O=results/task_diagnosis
D=data/BallPlay-M
declare -A RUNS=(
  [heading_fixed013]="--task heading --script fixed --skill 13"
  [heading_steer]="--task heading --script steer"
  [heading_fixed013_ahead]="--task heading --script fixed --skill 13 --goal-ahead"
  [heading_steer_ahead]="--task heading --script steer --goal-ahead"
  [circling_fixed013]="--task circling --script fixed --skill 13"
  [circling_steer]="--task circling --script steer"
  [throwing_pickup_then005]="--task throwing --script pickup-then --skill 5 --throwing.height 2.5"
  [throwing_pickup_then031]="--task throwing --script pickup-then --skill 31 --throwing.height 2.5"
  [throwing_fixed005]="--task throwing --script fixed --skill 5 --throwing.height 2.5"
  [throwing_pickup_then005_pickfirst]="--task throwing --script pickup-then --skill 5 --motion-dir $D/pick_40 --first-frame --throwing.height 2.5"
  [throwing_fixed005_shotfirst]="--task throwing --script fixed --skill 5 --motion-dir $D/shot_style1 --first-frame --throwing.height 2.5"
  [throwing_fixed031_layupfirst]="--task throwing --script fixed --skill 31 --motion-dir $D/layup --first-frame --throwing.height 2.5"
  [throwing_hlc_HT]="--hlc results/skills15/HT_policy.pt"
  [scoring_steer]="--task scoring --script steer"
  [scoring_steer_ahead]="--task scoring --script steer --goal-ahead"
  [scoring_fixed031_layupfirst]="--task scoring --script fixed --skill 31 --motion-dir $D/layup --first-frame"
  [heading_fixed013_first]="--task heading --script fixed --skill 13 --first-frame"
  [heading_fixed013_ahead_first]="--task heading --script fixed --skill 13 --first-frame --goal-ahead"
  [throwing_pickup_then005_h29]="--task throwing --script pickup-then --skill 5 --throwing.height 2.9"
  [throwing_fixed005_shotfirst_h29]="--task throwing --script fixed --skill 5 --motion-dir $D/shot_style1 --first-frame --throwing.height 2.9"
  [scoring_fixed031_layupfirst_placed]="--task scoring --script fixed --skill 31 --motion-dir $D/layup --first-frame --goal-at 4.715 0.374"
  [scoring_fixed031_placed]="--task scoring --script fixed --skill 31 --goal-at 4.715 0.374"
  [heading_fixed013_seed1]="--task heading --script fixed --skill 13 --seed 1"
  [heading_fixed013_ahead_seed1]="--task heading --script fixed --skill 13 --goal-ahead --seed 1"
  [throwing_pickup_then005_seed1]="--task throwing --script pickup-then --skill 5 --seed 1 --throwing.height 2.5"
  [throwing_pickup_then005_h29_seed1]="--task throwing --script pickup-then --skill 5 --throwing.height 2.9 --seed 1"
  [scoring_steer_seed1]="--task scoring --script steer --seed 1"
  # Exploration (section 5): random controllers on throwing at 2.9 m, two seeds each.
  [throwing_fixed005_h29]="--task throwing --script fixed --skill 5 --throwing.height 2.9"
  [throwing_fixed005_h29_seed1]="--task throwing --script fixed --skill 5 --throwing.height 2.9 --seed 1"
  [throwing_random_p0]="--task throwing --script random --stick 0 --throwing.height 2.9"
  [throwing_random_p0_seed1]="--task throwing --script random --stick 0 --throwing.height 2.9 --seed 1"
  [throwing_random_p09]="--task throwing --script random --stick 0.9 --throwing.height 2.9"
  [throwing_random_p09_seed1]="--task throwing --script random --stick 0.9 --throwing.height 2.9 --seed 1"
  [throwing_random_p097]="--task throwing --script random --stick 0.97 --throwing.height 2.9"
  [throwing_random_p097_seed1]="--task throwing --script random --stick 0.97 --throwing.height 2.9 --seed 1"
  [throwing_random_p099]="--task throwing --script random --stick 0.99 --throwing.height 2.9"
  [throwing_random_p099_seed1]="--task throwing --script random --stick 0.99 --throwing.height 2.9 --seed 1"
  [throwing_random_repeat5]="--task throwing --script random --repeat 5 --throwing.height 2.9"
  [throwing_random_repeat5_seed1]="--task throwing --script random --repeat 5 --throwing.height 2.9 --seed 1"
  [throwing_random_repeat10]="--task throwing --script random --repeat 10 --throwing.height 2.9"
  [throwing_random_repeat10_seed1]="--task throwing --script random --repeat 10 --throwing.height 2.9 --seed 1"
  [throwing_random_repeat25]="--task throwing --script random --repeat 25 --throwing.height 2.9"
  [throwing_random_repeat25_seed1]="--task throwing --script random --repeat 25 --throwing.height 2.9 --seed 1"
  [throwing_random_llc15]="--task throwing --script random --llc-steps 15 --throwing.height 2.9"
  [throwing_random_llc15_seed1]="--task throwing --script random --llc-steps 15 --throwing.height 2.9 --seed 1"
  [throwing_random_llc30]="--task throwing --script random --llc-steps 30 --throwing.height 2.9"
  [throwing_random_llc30_seed1]="--task throwing --script random --llc-steps 30 --throwing.height 2.9 --seed 1"
  [throwing_random_p0995]="--task throwing --script random --stick 0.995 --throwing.height 2.9"
  [throwing_random_p0995_seed1]="--task throwing --script random --stick 0.995 --throwing.height 2.9 --seed 1"
  # At 256 episodes (--episodes after run's --episodes ${EPISODES:-64} wins).
  [throwing_fixed005_h29_e256]="--task throwing --script fixed --skill 5 --throwing.height 2.9 --episodes 256"
  [throwing_fixed005_h29_e256_seed1]="--task throwing --script fixed --skill 5 --throwing.height 2.9 --episodes 256 --seed 1"
  [throwing_random_p097_e256]="--task throwing --script random --stick 0.97 --throwing.height 2.9 --episodes 256"
  [throwing_random_p097_e256_seed1]="--task throwing --script random --stick 0.97 --throwing.height 2.9 --episodes 256 --seed 1"
  [throwing_random_p099_e256]="--task throwing --script random --stick 0.99 --throwing.height 2.9 --episodes 256"
  [throwing_random_p099_e256_seed1]="--task throwing --script random --stick 0.99 --throwing.height 2.9 --episodes 256 --seed 1"
  [throwing_random_p0995_e256]="--task throwing --script random --stick 0.995 --throwing.height 2.9 --episodes 256"
  [throwing_random_p0995_e256_seed1]="--task throwing --script random --stick 0.995 --throwing.height 2.9 --episodes 256 --seed 1"
  [throwing_random_repeat25_e256]="--task throwing --script random --repeat 25 --throwing.height 2.9 --episodes 256"
  [throwing_random_repeat25_e256_seed1]="--task throwing --script random --repeat 25 --throwing.height 2.9 --episodes 256 --seed 1"
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(heading_fixed013 heading_steer heading_fixed013_ahead heading_steer_ahead
  circling_fixed013 circling_steer throwing_pickup_then005 throwing_pickup_then031 throwing_fixed005
  throwing_pickup_then005_pickfirst throwing_fixed005_shotfirst throwing_fixed031_layupfirst throwing_hlc_HT
  scoring_steer scoring_steer_ahead scoring_fixed031_layupfirst heading_fixed013_first heading_fixed013_ahead_first
  throwing_pickup_then005_h29 throwing_fixed005_shotfirst_h29 scoring_fixed031_layupfirst_placed
  scoring_fixed031_placed heading_fixed013_seed1 heading_fixed013_ahead_seed1 throwing_pickup_then005_seed1
  throwing_pickup_then005_h29_seed1 scoring_steer_seed1
  throwing_fixed005_h29 throwing_fixed005_h29_seed1 throwing_random_p0 throwing_random_p0_seed1 throwing_random_p09
  throwing_random_p09_seed1 throwing_random_p097 throwing_random_p097_seed1 throwing_random_p099
  throwing_random_p099_seed1 throwing_random_repeat5 throwing_random_repeat5_seed1 throwing_random_repeat10
  throwing_random_repeat10_seed1 throwing_random_repeat25 throwing_random_repeat25_seed1 throwing_random_llc15
  throwing_random_llc15_seed1 throwing_random_llc30 throwing_random_llc30_seed1
  throwing_random_p0995 throwing_random_p0995_seed1 throwing_fixed005_h29_e256 throwing_fixed005_h29_e256_seed1
  throwing_random_p097_e256 throwing_random_p097_e256_seed1 throwing_random_p099_e256
  throwing_random_p099_e256_seed1 throwing_random_p0995_e256 throwing_random_p0995_e256_seed1
  throwing_random_repeat25_e256 throwing_random_repeat25_e256_seed1)
for n in "${names[@]}"; do
  start=$(date +%s)
  python tools/scripted_task.py --llc $L --episodes ${EPISODES:-64} --seed 0 ${RUNS[$n]} \
    --json-out $O/$n.json --csv-out $O/$n.csv | tee $O/$n.txt
  echo "  ($n: $(( $(date +%s) - start )) s)" | tee -a $O/$n.txt
done
# One row per run: summary.csv (from the JSON files above).
python - "$O" <<'PY'
import csv, json, sys
from pathlib import Path
rows = []
for f in sorted(Path(sys.argv[1]).glob("*.json")):
    d = json.loads(f.read_text())
    if "summary" not in d:  # not this tool's (shipped_hlc_throwing_h29_cpu.json: evaluate_task's)
        continue
    s, a = d["summary"], d["args"]
    rows.append({"run": f.stem, "task": d["task"], "controller": a["hlc"] or (f"random stick {a['stick']} repeat {a['repeat']}" if a["script"] == "random"
                 else f"{a['script']} {a['skill'] or ''}".strip()) + (f", {a['llc_steps']} steps a decision"
                 if a.get("llc_steps", 3) != 3 else ""),
                 "first_frame": a["first_frame"], "goal": "at " + str(a["goal_at"]) if a["goal_at"] else
                 "ahead" if a["goal_ahead"] else "drawn", "seed": a["seed"], "episodes": s["episodes"],
                 "success": round(s["success"], 4), "fell": round(s["fell"], 4), "timed_out": round(s["timed_out"], 4),
                 "mean_steps": round(s["mean_steps"], 1), "falls_by_skill": json.dumps(s["falls_by_skill"]),
                 "skill_shares": json.dumps(s["skill_shares"])})
with open(Path(sys.argv[1]) / "summary.csv", "w", newline="") as out:
    w = csv.DictWriter(out, list(rows[0]))
    w.writeheader()
    w.writerows(rows)
PY
