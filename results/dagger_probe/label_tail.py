"""Where does the 19-skill student's distance to its teacher come from, on the states it trains on? A probe of the
DAgger data (docs/llc_recipe.md, "All skills, round 14", after the round).

    python results/dagger_probe/label_tail.py STUDENT.pt TEACHER.pt DIR OUT.json [--player teacher] [--states N]
        [--anchored]

Plays DIR's clips (one skill's) in the training environment (skillmimic.recipe.training_env: reference-state starts,
early termination, the student file's hand, physics, ball starts, actions and past, as skillmimic.offline_distill
builds it), 128 worlds on the CPU, by the student's action means plus Gaussian noise of std 0.05 (or, with --player
teacher, by the teacher's, as offline_distill collects), until N states (default 20,000) are kept after 150 control
steps (all worlds start together: the episodes' ends and restarts mix them by then); at each state the squared
distance of the student's action mean from the teacher's (the mean over the 66 actions, as train_llc.py's distill_mse)
and how far the reference's pelvis lies from the humanoid's, horizontally (the drift that training's termination,
--env.fall-distance, limits). With --anchored the teacher is fed the reference laid onto the humanoid's position
(skillmimic.envs.reference_obs.anchor) where it labels (not where it plays). Writes the distance's mean, quantiles,
the share of its sum held by the farthest 1 / 5 / 10% of the states, and its mean per band of drift.
"""
import dataclasses
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from skillmimic.distill import load_teachers  # noqa: E402
from skillmimic.envs.history import History  # noqa: E402
from skillmimic.envs.imitation import ImitationEnv, load_motions  # noqa: E402
from skillmimic.envs.label_sampling import LabelSampling  # noqa: E402
from skillmimic.envs.reference_obs import anchor  # noqa: E402
from skillmimic.policy import load_policy  # noqa: E402
from skillmimic.recipe import training_env  # noqa: E402

BANDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, float("inf"))  # drift bands (m)


def main() -> None:
    student_path, teacher_path, motion_dir, out, *flags = sys.argv[1:]
    player = flags[flags.index("--player") + 1] if "--player" in flags else "student"
    want = int(flags[flags.index("--states") + 1]) if "--states" in flags else 20_000
    torch.manual_seed(0)
    device = torch.device("cpu")
    student = load_policy(student_path, device)
    cfg = dataclasses.replace(training_env(), hand=student.hand, physics=student.physics,
                              ball_starts=student.ball_starts, action_scale=student.action_scale,
                              action_clip=student.action_clip, history=History(student.history_steps),
                              label_sampling=LabelSampling("samples"))
    env = ImitationEnv(cfg, load_motions(motion_dir, cfg, device), 128, device, seed=0)
    teachers = load_teachers((teacher_path,), env, device, show=False)
    labeller = load_teachers((teacher_path,), env, device, show=False)  # the labels: anchored with --anchored
    if "--anchored" in flags:
        labeller.reference = lambda: anchor(env.reference_obs())
    gen = torch.Generator().manual_seed(0)
    dist, drift = [], []
    obs, kept, step = env.reset(), 0, 0
    while kept < want:
        step += 1
        label = env.skill.argmax(-1)  # (N,)
        with torch.no_grad():
            mu_t, _ = labeller.means(obs, label)  # (N, 66) the labels
            mu_p, _ = teachers.means(obs, label)  # (N, 66) the teacher as it plays (--player teacher)
            mu_s = student(obs)  # (N, 66)
        ref = env.reference_obs()  # (N, 168): the reference pelvis relative to the humanoid's first
        if step > 150:
            dist.append((mu_s - mu_t).square().mean(-1))
            drift.append(ref[:, :2].norm(dim=-1))
            kept += len(obs)
        mu = mu_s if player == "student" else mu_p
        obs, *_ = env.step(mu + 0.05 * torch.randn(mu.shape, generator=gen))
    d, r = torch.cat(dist)[:want], torch.cat(drift)[:want]
    top = d.sort(descending=True).values
    result = {"student": student_path, "teacher": teacher_path, "motion_dir": motion_dir, "player": player,
              "anchored": "--anchored" in flags,
              "states": want, "mean": float(d.mean()),
              "quantiles": {q: float(d.quantile(float(q))) for q in ("0.5", "0.9", "0.99")},
              "share_of_sum": {f"top {p}%": float(top[: int(len(top) * p / 100)].sum() / top.sum())
                               for p in (1, 5, 10)},
              "by_drift": [{"drift_m": f"{lo}-{hi}", "states": int(m.sum()), "share": float(m.float().mean()),
                            "mean": float(d[m].mean()) if m.any() else None}
                           for lo, hi in zip(BANDS, BANDS[1:]) for m in [(r >= lo) & (r < hi)]]}
    Path(out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
