import json, sys
rows = json.load(open("results/pickup_study/out/probe_p0.json")) + json.load(open("results/pickup_study/out/probe_p1.json"))
cj = {c["clip"]: c for c in json.load(open("results/pickup_study/clips.json"))}
LONG = {"007_001", "007_002", "007_003", "022_5"}
def key(name): return name[4:-3].replace("pickle_pick_", "_")
def group(k):
    if k in LONG: return "long"
    if k.startswith("009"): return "009 dribbled"
    if k.startswith("008") and k != "008_000": return "008 moving"
    return "static"
# each probe stands for `every`=20 frames (2 segments); fall rate of the segment ~ terminated (0/1) of its probe
F = sum(r["length"] - 1 for r in {r["clip"]: r for r in rows}.values())
for r in rows:
    r["k"] = key(r["clip"]); r["g"] = group(r["k"]); r["fc"] = cj[r["k"]]["first_contact"]
    r["w_frames"] = min(20, r["length"] - 1 - r["frame"])
    r["fr"] = (float(r["terminated"]) + 0.5 / 1) / 2  # prior-smoothed with one pseudo-episode like (fell+.5)/(started+1) for started=1
S_fr = sum(r["fr"] * r["w_frames"] for r in rows)
for r in rows:
    r["p_uniform"] = r["w_frames"] / F
    r["p"] = 0.2 * r["p_uniform"] + 0.8 * r["fr"] * r["w_frames"] / S_fr
def summarize(name, sel):
    sub = [r for r in rows if sel(r)]
    if not sub: return
    pu = sum(r["p_uniform"] for r in sub); pa = sum(r["p"] for r in sub)
    samp_u = sum(r["p_uniform"] * r["steps"] for r in sub); samp_a = sum(r["p"] * r["steps"] for r in sub)
    tot_u = sum(r["p_uniform"] * r["steps"] for r in rows); tot_a = sum(r["p"] * r["steps"] for r in rows)
    term = sum(r["terminated"] for r in sub) / len(sub)
    ms = sum(r["steps"] for r in sub) / len(sub)
    print(f"{name:55s} probes={len(sub):3d} terminated={100*term:5.1f}% mean_steps={ms:5.1f} | starts: uniform {100*pu:5.1f}% adaptive {100*pa:5.1f}% | samples: uniform {100*samp_u/tot_u:5.1f}% adaptive {100*samp_a/tot_a:5.1f}%")
summarize("all", lambda r: True)
for g in ["static", "long", "008 moving", "009 dribbled"]:
    summarize(g, lambda r, g=g: r["g"] == g)
    summarize(g + ": start before first contact-20", lambda r, g=g: r["g"] == g and r["frame"] < r["fc"] - 20)
    summarize(g + ": start within 20 before contact .. after", lambda r, g=g: r["g"] == g and r["frame"] >= r["fc"] - 20)
summarize("any clip, start frame 0-19 (the evaluation's segment)", lambda r: r["frame"] == 0)
summarize("moving/dribbled clips, start frame 0-19", lambda r: r["frame"] == 0 and r["g"] in ("008 moving", "009 dribbled"))
print()
for r in rows:
    if r["frame"] == 0: print(r["k"], r["g"], "from frame 0: steps", r["steps"], "terminated", r["terminated"], "ball", r["ball"])
