"""A fall made by hand, for the tests of what happens when an episode ends inside a step."""


def knock_down(env, world: int = 0) -> None:
    """Put `world`'s pelvis at shin height (the body on the floor), so that its next step ends in a fall."""
    qpos = env.sim.qpos.clone()
    qpos[world, 2] = 0.15
    env.sim.qpos.copy_(qpos)
    env.sim.forward()
