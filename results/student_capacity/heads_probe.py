"""Skill-selected layers, an offline probe: does a 19-skill student whose output layer (or more) is chosen by the
skill label fit the teachers where the plain MLP does not (README.md here, "Skill-selected layers")?

Plain torch, one CPU thread. It reads a states file written by `python -m skillmimic.offline_distill --save-states`
(obs (S, 868) with the 64-slot skill one-hot at columns 804-867, the teachers' action means mu (S, 66), label (S,))
and a fresh policy file (make_fresh.py: a random 1024-512-512 actor with round 9's Y's observation normaliser), and
fits one of four students to the teachers' means exactly as offline_distill.fit does: the observations normalised by
the file's frozen normaliser ((x - mean) / sqrt(var + 1e-5), clipped to +-5), a held-out tenth drawn by
torch.randperm with a CPU generator seeded 0 (the same split and the same minibatch order as offline_distill with
--seed 0), Adam (eps 1e-5) on the squared distance averaged over the actions, and after each epoch the held-out
distance per skill (mean squared distance over actions and that skill's held-out states).

Students (all from the fresh file's weights, so that all four start as the same function):
  plain   the MLP 868-1024-512-512-66, ELU (skillmimic.policy.mlp); its weights are the fresh file's.
  heads   the same trunk; the last linear layer (512 -> 66) one per skill slot, selected by the label (each slot
          starts as a copy of the fresh file's last layer).
  concat  the plain MLP with the raw 64-slot one-hot also concatenated to the input of the 2nd and 3rd hidden layers
          (the 1st sees it in the observation); the one-hot's new weight columns start at zero.
  heads2  `heads` with the last hidden layer (512 -> 512) one per skill slot too (copies of the fresh file's).
A skill-selected layer holds 64 slots; only the 19 slots of the states' skills are stored and fitted here (the
others never see a label, get no gradient and are never read: the same fit as 64 slots under Adam). Parameter
counts print both. The forward pass groups a minibatch by label and runs one matmul per skill present.

Run from the repository's root (one process a fit; ~7-9 minutes each on this machine's CPU):
    python results/student_capacity/heads_probe.py --variant plain --states /tmp/cap/states6k.pt \
        --fresh /tmp/cap/fresh_1024x512x512.pt --epochs 30 --batch 1024 --lr 1e-4 \
        --json /tmp/heads/plain.json | tee results/student_capacity/heads_a_plain.log
(--variant heads / concat / heads2 for the others; --only 13 --epochs 505: the dribble alone, ~3,030 steps as the
fit of all 19's 30 epochs, on the same held-out states of it.)
"""
import argparse
import json
import math
import time

import torch
from torch import nn
import torch.nn.functional as F

NUM_SLOTS = 64
ONEHOT = slice(804, 868)  # the skill one-hot's columns in the 868 observations


class SkillLinear(nn.Module):
    """A linear layer per used skill slot: x (B, n_in) with slot indices idx (B,) into the used slots -> (B, n_out).
    Every row goes through its own skill's weights; one matmul per skill present in the batch."""

    def __init__(self, base: nn.Linear, n_used: int):
        super().__init__()
        self.weight = nn.Parameter(base.weight.detach().clone().unsqueeze(0).repeat(n_used, 1, 1))  # (U, out, in)
        self.bias = nn.Parameter(base.bias.detach().clone().unsqueeze(0).repeat(n_used, 1))  # (U, out)

    def forward(self, x, idx, groups):
        out = []
        for u, rows in groups:  # rows: a contiguous slice of the (label-sorted) batch
            out.append(F.linear(x[rows], self.weight[u], self.bias[u]))
        return torch.cat(out)


class Student(nn.Module):
    """The probe's student of one variant; forward(obs_n (B, 868), idx (B,) used-slot index) -> (B, 66)."""

    def __init__(self, variant: str, actor_state: dict, n_used: int):
        super().__init__()
        self.variant = variant
        shapes = [actor_state[f"{i}.weight"].shape for i in (0, 2, 4, 6)]
        lin = []
        for i, (n_out, n_in) in zip((0, 2, 4, 6), shapes):
            extra = NUM_SLOTS if (variant == "concat" and i in (2, 4)) else 0
            layer = nn.Linear(n_in + extra, n_out)
            with torch.no_grad():
                layer.weight.zero_()
                layer.weight[:, :n_in] = actor_state[f"{i}.weight"]
                layer.bias.copy_(actor_state[f"{i}.bias"])
            lin.append(layer)
        self.l0, self.l1 = lin[0], lin[1]
        self.l2 = SkillLinear(lin[2], n_used) if variant == "heads2" else lin[2]
        self.l3 = SkillLinear(lin[3], n_used) if variant in ("heads", "heads2") else lin[3]

    def forward(self, x, idx, onehot):
        # group the batch by skill (sorted), run, and put the rows back in their order
        order = torch.argsort(idx, stable=True)
        x, idx_s, onehot = x[order], idx[order], onehot[order]
        counts = torch.bincount(idx_s).tolist()
        groups, start = [], 0
        for u, c in enumerate(counts):
            if c:
                groups.append((u, slice(start, start + c)))
                start += c
        h = F.elu(self.l0(x))
        if self.variant == "concat":
            h = torch.cat((h, onehot), -1)
        h = F.elu(self.l1(h))
        if self.variant == "concat":
            h = torch.cat((h, onehot), -1)
        h = F.elu(self.l2(h, idx_s, groups) if isinstance(self.l2, SkillLinear) else self.l2(h))
        y = self.l3(h, idx_s, groups) if isinstance(self.l3, SkillLinear) else self.l3(h)
        return y[torch.argsort(order)]


def count_params(student: Student, n_used: int) -> tuple[int, int, int]:
    """-> (stored: the 19 used slots, as a 64-slot network would hold them, one skill's path)."""
    stored = sum(p.numel() for p in student.parameters())
    per_slot = sum(p[0].numel() for m in student.modules() if isinstance(m, SkillLinear) for p in m.parameters())
    return stored, stored + (NUM_SLOTS - n_used) * per_slot, stored - (n_used - 1) * per_slot


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=("plain", "heads", "concat", "heads2"), required=True)
    ap.add_argument("--states", required=True)
    ap.add_argument("--fresh", required=True)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write the per-epoch held-out distances here")
    ap.add_argument("--only", type=int, nargs="*", help="fit these skill slots alone (the split is drawn on all the "
                    "states first, so their held-out states are the same as in the fit of all)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    st = torch.load(a.states, weights_only=True, map_location="cpu")
    pol = torch.load(a.fresh, weights_only=True, map_location="cpu")
    obs, mu, label = st["obs"].float(), st["mu"].float(), st["label"].long()
    assert bool((obs[torch.arange(len(obs)), ONEHOT.start + label] == 1).all()), "one-hot columns do not match labels"
    norm = pol["obs_norm"]
    obs_n = ((obs - norm["mean"]) / torch.sqrt(norm["var"] + 1e-5)).clamp(-5.0, 5.0)
    onehot = obs[:, ONEHOT].contiguous()  # raw 0/1
    del obs
    used = sorted(set(label.tolist()))
    slot_to_used = torch.full((NUM_SLOTS,), -1, dtype=torch.long)
    slot_to_used[used] = torch.arange(len(used))
    idx = slot_to_used[label]

    student = Student(a.variant, pol["actor"], len(used))
    stored, full, one = count_params(student, len(used))
    print(f"variant {a.variant}: {len(obs_n):,} states of {len(used)} skills; parameters: {stored:,} stored "
          f"(the {len(used)} used slots), {full:,} with all {NUM_SLOTS} slots, {one:,} on one skill's path", flush=True)

    gen = torch.Generator().manual_seed(a.seed)  # as offline_distill's cpu_gen: split, then each epoch's order
    order = torch.randperm(len(obs_n), generator=gen)
    held = order[: max(1, len(order) // 10)]
    train = order[len(held):]
    if a.only:
        keep = torch.zeros(NUM_SLOTS, dtype=torch.bool)
        keep[a.only] = True
        held, train = held[keep[label[held]]], train[keep[label[train]]]
        print(f"only {' '.join(f'{k:03d}' for k in a.only)}: {len(train):,} states fitted, {len(held):,} held out",
              flush=True)

    def distance():
        sums = torch.zeros(NUM_SLOTS)
        with torch.no_grad():
            for i in range(0, len(held), a.batch):
                h = held[i : i + a.batch]
                d = (student(obs_n[h], idx[h], onehot[h]) - mu[h]).square().mean(-1)
                sums.index_add_(0, label[h], d)
        counts = torch.bincount(label[held], minlength=NUM_SLOTS)
        return {int(k): float(sums[k] / counts[k]) for k in torch.nonzero(counts).flatten()}

    opt = torch.optim.Adam(student.parameters(), lr=a.lr, eps=1e-5)
    curve = [distance()]
    start = time.perf_counter()
    for epoch in range(1, a.epochs + 1):
        perm = train[torch.randperm(len(train), generator=gen)]
        loss_sum, n = 0.0, 0
        for i in range(0, len(perm), a.batch):
            mb = perm[i : i + a.batch]
            loss = (student(obs_n[mb], idx[mb], onehot[mb]) - mu[mb]).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum, n = loss_sum + float(loss.detach()) * len(mb), n + len(mb)
        curve.append(distance())
        assert all(math.isfinite(v) for v in curve[-1].values()), "diverged"
        c = curve[-1]
        worst = max(c, key=c.get)
        print(f"fit: epoch {epoch}/{a.epochs}  train {loss_sum / n:.6f}  held-out {sum(c.values()) / len(c):.6f} "
              f"(the farthest skill {worst:03d}: {c[worst]:.6f})  {time.perf_counter() - start:.0f} s", flush=True)
    secs = time.perf_counter() - start
    print("held-out distance per skill, before -> after: " + ", ".join(
        f"{k:03d} {curve[0][k]:.5f} -> {v:.5f}" for k, v in curve[-1].items()))
    c = curve[-1]
    others = [v for k, v in c.items() if k not in (1, 13, 31)]
    best = {k: min(e[k] for e in curve) for k in c}
    print(f"summary {a.variant}{' only' if a.only else ''}: mean {sum(c.values()) / len(c):.5f}  "
          + "  ".join(f"{k:03d} {c[k]:.5f} (best epoch's {best[k]:.5f})" for k in (1, 13, 31) if k in c)
          + (f"  other 16 {min(others):.5f}-{max(others):.5f}" if others else "")
          + f"  fit {secs:.0f} s ({math.ceil(len(train) / a.batch)} steps an epoch)", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"variant": a.variant, "params_stored": stored, "params_64_slots": full,
                       "params_one_path": one, "fit_seconds": secs,
                       "curve": [{f"{k:03d}": v for k, v in e.items()} for e in curve]}, f)


if __name__ == "__main__":
    main()
