"""The environment's start draw as it was before the options that may change it (label sampling, switch starts),
written out by hand: the tests that check an option left off draws exactly these."""

import torch


def todays_starts(env, motions, n: int, seed: int = 1):
    """sample_starts without adaptive starts, from a generator seeded as the environment's: a label uniform among
    the two of the tests' motions, a clip within it, a frame but the clip's last.
    -> (label indices, motion ids, frame ids) (n,) each, and the generator after the draw."""
    gen = torch.Generator().manual_seed(seed)
    lab = torch.randint(0, 2, (n,), generator=gen)
    k = (torch.rand(n, generator=gen) * env.clip_count[lab]).long()
    mids = env.clips_of[lab, k]
    fids = (torch.rand(n, generator=gen) * (motions.lengths[mids] - 1)).long()
    return lab, mids, fids, gen
