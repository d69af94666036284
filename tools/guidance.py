"""The reference notebooks' classifier-free guidance wrapper, shared by the tools/ scripts.

notebooks/text2im.ipynb samples a doubled batch (prompt rows, then empty-prompt rows) through
`model_fn`: the first half of x_t is fed twice, eps is guided as uncond + s * (cond - uncond) and used for
both halves, and the variance channels are the model's own.
"""
import contextlib

import torch as th


def guided_model_fn(model, scale):
    """`model_fn` of the notebooks, for a model whose output is [eps (3 channels), variance values]."""

    def model_fn(x_t, ts, **kwargs):
        half = x_t[: len(x_t) // 2]
        combined = th.cat([half, half], dim=0)
        model_out = model(combined, ts, **kwargs)
        eps, rest = model_out[:, :3], model_out[:, 3:]
        cond_eps, uncond_eps = th.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond_eps + scale * (cond_eps - uncond_eps)
        return th.cat([th.cat([half_eps, half_eps], dim=0), rest], dim=1)

    return model_fn


@contextlib.contextmanager
def recorded_noise(drawn):
    """Appends every `th.randn_like` draw made inside the block (the samplers' step noise) to `drawn`."""
    real_randn_like = th.randn_like

    def recording_randn_like(x, *a, **k):
        n = real_randn_like(x, *a, **k)
        drawn.append(n.clone())
        return n

    th.randn_like = recording_randn_like
    try:
        yield drawn
    finally:
        th.randn_like = real_randn_like
