import json
cj = {c["clip"]: c for c in json.load(open("results/pickup_study/clips.json"))}
LONG = {"007_001", "007_002", "007_003", "022_5"}
def key(n): return n[4:-3].replace("pickle_pick_", "_")
def group(k):
    if k in LONG: return "long"
    if k.startswith("009"): return "009 dribbled"
    if k.startswith("008") and k != "008_000": return "008 moving"
    return "static"
eps = json.load(open("results/pickup_study/out/episodes_seed3.json")) + json.load(open("results/pickup_study/out/episodes_seed4.json"))
from collections import defaultdict
G = defaultdict(list)
for e in eps:
    k = key(e["clip"]); c = cj[k]; e["k"] = k
    G[group(k)].append(e)
for g, L in G.items():
    n = len(L); s = sum(e["success"] for e in L)
    fails = [e for e in L if not e["success"]]
    print(f"== {g}: {n} episodes, success {100*s/n:.1f}%, failures {len(fails)}")
    cats = defaultdict(int)
    for e in fails:
        c = cj[e["k"]]; fc, lift = c["first_contact"], c["lift"]
        first = min([x for x in (e["fall"], e["lost"]) if x is not None], default=None)
        if e["lost"] is not None and (e["fall"] is None or e["lost"] <= e["fall"]):
            what = "ball lost first"; when = e["lost"]
        elif e["fall"] is not None:
            what = "fell first (ball kept)"; when = e["fall"]
        else:
            what = "neither (held too few steps)"; when = None
        if when is None: phase = ""
        elif when < fc: phase = "before the reference's first contact"
        elif when < max(lift, fc) + 1: phase = "between contact and lift"
        elif when <= c["L"]: phase = "after the lift, on the clip"
        else: phase = "past the clip's end"
        cats[(what, phase)] += 1
        print(f"   {e['k']:8s} fall={e['fall']} lost={e['lost']} touch={e['first_touch']} held={e['held']} | ref contact={fc} lift={lift} len={c['L']} -> {what}, {phase}")
    for k, v in sorted(cats.items(), key=lambda x: -x[1]): print(f"   {v:3d}  {k[0]}: {k[1]}")
