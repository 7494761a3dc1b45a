"""What a skill-policy training run (train_llc.py) writes as its policy file (skillmimic.policy reads it)."""

from __future__ import annotations

from skillmimic import lineage
from skillmimic.policy import policy_file


def policy_export(agent, args, env, iteration: int, global_step: int, history_before: dict = lineage.NEW) -> dict:
    """The policy file of train_llc.py's `agent` (its Agent: actor, obs_norm, critic, value_norm, ref_norm, log_std)
    trained with `args` (its Args) in `env` (an ImitationEnv), at `iteration` after `global_step` samples. What
    play.py and the evaluation need: the actor, the observation normaliser, sizes, action scaling, the past steps it
    observes, the physical options and whether the reference ball had fitted starts (EnvConfig.ball_starts); where
    in training it was taken (in its run, and in all: skillmimic.lineage); and the critic with its value normaliser
    (and with --critic-reference, its reference normaliser), for a run that continues from it (--init-from). With
    --actor-reference the actor sees the reference ("actor_reference": a teacher, skillmimic.policy; with
    --anchor-reference laid onto the humanoid, "reference_anchor"), and the clips
    whose reference looped for it are recorded ("loops": envs/loops.py). With a mass curriculum, where it stood
    ("mass_curriculum": envs/assist.py, MassCurriculum.record), so that a run continued from the file can go on
    from there (--env.mass-curriculum.first-step); under torchrun every rank's environment has played as many
    steps as rank 0's."""
    reference = {"ref_norm": agent.ref_norm.state_dict()} if agent.ref_norm is not None else {}
    mass = env.cfg.mass_curriculum.record(env.mass_steps)
    if args.actor_reference:
        reference["actor_reference"] = True
        if args.anchor_reference:  # its readers feed it the reference so (reference_obs.seen_by)
            reference["reference_anchor"] = True
        if env.cfg.loops.labels:  # the reference it reads loops past these clips' ends: so does its evaluation's
            lp = env.cfg.loops
            reference["loops"] = {"labels": list(lp.labels), "min_frames": lp.min_frames,
                                  "blend_frames": lp.blend_frames}
    return policy_file(agent.actor, agent.obs_norm, env.num_obs, env.num_actions, tuple(args.hidden),
                       env.cfg.action_scale, env.cfg.action_clip, hand=env.spec.hand, model_sha256=env.spec.sha256,
                       physics=env.cfg.physics.as_dict(), ball_starts=env.cfg.ball_starts,
                       critic=agent.critic.state_dict(),
                       value_norm=agent.value_norm.state_dict(), critic_reference=args.critic_reference,
                       **reference, skill_labels=env.skill_labels.tolist(),
                       motion_dir=args.motion_dir, iteration=iteration, samples=global_step,
                       log_std=float(agent.log_std.detach().mean()), history_steps=env.cfg.history.steps,
                       history=lineage.total(history_before, iteration, global_step),
                       **({"mass_curriculum": mass} if mass is not None else {}))
