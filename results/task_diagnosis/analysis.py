"""The numbers README.md quotes beyond each run's summary, derived from the runs' JSON files (run.sh writes them).

    python results/task_diagnosis/analysis.py > results/task_diagnosis/analysis.txt
"""

import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent


def episodes(run: str) -> list[dict]:
    return json.loads((HERE / f"{run}.json").read_text())["episodes"]


def pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.1f}%)"


def count(items) -> dict:
    items = list(items)
    return {k: items.count(k) for k in sorted(set(items))}


print("== Outcomes by the start clip's label (always dribble forward, 013) ==")
for run in ("heading_fixed013", "heading_fixed013_seed1", "heading_fixed013_ahead", "heading_fixed013_first"):
    ep = episodes(run)
    for lab in sorted({e["start_label"] for e in ep}):
        sub = [e for e in ep if e["start_label"] == lab]
        n = count(e["outcome"] for e in sub)
        print(f"{run}: start {lab:03d}: fell {pct(n.get('fell', 0), len(sub))}, success {n.get('success', 0)}, "
              f"timed out {n.get('timed_out', 0)}")

print("\n== Heading: where the dribble forward goes (always 013) ==")
for run in ("heading_fixed013", "heading_fixed013_ahead", "heading_fixed013_first"):
    ep = episodes(run)
    up = [e for e in ep if e["outcome"] == "timed_out"]
    turn = [e["heading_change_deg"] / (e["steps"] / 60) for e in up]
    print(f"{run}: time-outs {len(up)}: pelvis displacement in 10 s, median "
          f"{statistics.median(e['pelvis_displacement'] for e in up):.2f} m; heading change, median "
          f"{statistics.median(turn):.1f} deg/s (range {min(turn):.1f} to {max(turn):.1f}; left positive), to the left "
          f"in {sum(t > 0 for t in turn)}")
    ok = [e for e in ep if e["outcome"] == "success"]
    if ok:
        steps, goals = [e["steps"] for e in ok], [e["goal_distance"] for e in ok]
        print(f"  successes {len(ok)}: after {min(steps)}-{max(steps)} control steps, goals {min(goals):.2f}-"
              f"{max(goals):.2f} m away")
    falls = [e["steps"] for e in ep if e["outcome"] == "fell"]
    if falls:
        print(f"  falls {len(falls)}: control steps into the episode, median {statistics.median(falls)}")
    near = sum(abs(e["goal_bearing_deg"]) <= 30 for e in ep)
    print(f"  goals within 30 deg of the heading at the start: {pct(near, len(ep))}")

print("\n== Falls in the dribble left / right (steer scripts) ==")
for run in ("heading_steer", "circling_steer", "scoring_steer", "scoring_steer_seed1", "heading_steer_ahead"):
    ep = episodes(run)
    falls = [e for e in ep if e["outcome"] == "fell"]
    lr = [e["steps_since_switch"] for e in falls if e["last_skill"] in (11, 12)]
    soon = sum(e["switches"] > 0 and e["steps_since_switch"] <= 30 for e in falls)
    print(f"{run}: falls {pct(len(falls), len(ep))}; in 011/012: {len(lr)}, after a median of "
          f"{statistics.median(lr)} control steps of that skill (range {min(lr)}-{max(lr)}); falls within 30 steps "
          f"of a switch: {soon}")

print("\n== Throwing: the pickup, then the shot ==")
for run in ("throwing_pickup_then005", "throwing_pickup_then005_seed1", "throwing_pickup_then005_pickfirst",
            "throwing_pickup_then031", "throwing_fixed005", "throwing_hlc_HT"):
    ep = episodes(run)
    at0 = sum(e["first_hold_step"] == 0 for e in ep)
    later = sum(e["first_hold_step"] > 0 for e in ep)
    shot = sum((e["max_free_peak_after_hold"] or 0) >= 1.8 for e in ep)
    falls = [e for e in ep if e["outcome"] == "fell"]
    print(f"{run}: ball held at the first control step {pct(at0, len(ep))}; picked up later "
          f"{pct(later, len(ep) - at0)} of the others; a free ball above 1.8 m after the hold in {shot} of "
          f"{at0 + later} held episodes; falls by skill {count(e['last_skill'] for e in falls)}")
    lay = sorted(e["steps_since_switch"] for e in falls if e["last_skill"] == 31 and e["switches"] > 0)
    if lay:
        print(f"  falls in the layup after the switch: {len(lay)}, {lay[0]}-{lay[-1]} control steps after it "
              f"(median {statistics.median(lay)})")

print("\n== Throwing rescored: episodes whose recorded free-ball peaks include one within 0.3 m of H ==")
print("(every peak of the episode while it lasted: ThrowingConfig(height=H)'s test, its standing condition aside)")
for run in ("throwing_pickup_then005", "throwing_pickup_then005_seed1", "throwing_fixed005",
            "throwing_pickup_then005_pickfirst", "throwing_fixed005_shotfirst", "throwing_fixed031_layupfirst",
            "throwing_hlc_HT"):
    ep = episodes(run)
    hits = {h: sum(any(abs(p - h) < 0.3 for p in e["free_peaks"]) for e in ep) for h in (2.5, 2.7, 2.9, 3.1)}
    print(f"{run}: " + ", ".join(f"H={h}: {pct(k, len(ep))}" for h, k in hits.items()))
for run in ("throwing_fixed005_shotfirst", "throwing_fixed031_layupfirst"):
    peaks = sorted({e["max_free_peak_after_hold"] for e in episodes(run)})
    print(f"{run}: the highest free peak after the hold, its distinct values over the episodes: {peaks}")
ep = episodes("throwing_hlc_HT")
high = sum(max(e["free_peaks"] or [0]) > 1.8 for e in ep)
print(f"throwing_hlc_HT: episodes with a free-ball peak above 1.8 m: {high}")

print("\n== Scoring: the layup's reach and the rim ==")
for run in ("scoring_fixed031_layupfirst", "scoring_fixed031_layupfirst_placed", "scoring_fixed031_placed",
            "scoring_steer", "scoring_steer_ahead"):
    ep = episodes(run)
    cross = sorted({tuple(e["crossing_from_layup_start"]) for e in ep if e.get("crossing_from_layup_start")})
    falls = [e for e in ep if e["outcome"] == "fell"]
    print(f"{run}: layups {sum(e['layup_step'] >= 0 for e in ep)}, falls {len(falls)} "
          f"({sum(e['last_skill'] == 31 for e in falls)} in the layup), the ball down through 2.5 m in "
          f"{sum(e['rim_plane_crossings'] > 0 for e in ep)}; where the layup's ball came down, from its start "
          f"(forward, left; m): {cross}")
    near = [e["min_crossing_hoop_distance"] for e in ep if e["min_crossing_hoop_distance"] is not None]
    if near:
        print(f"  nearest crossing to the rim's centre: min {min(near):.3f} m, median {statistics.median(near):.3f} m")
