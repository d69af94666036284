#!/usr/bin/env python3
"""Goldens for our diffusion port (Sources/GlideModel/Diffusion), made with the genuine glide_text2im.

Usage:  python tools/make_diffusion_goldens.py [--out Tests/Fixtures/diffusion]
Needs torch, numpy and glide_text2im (pip install -e path/to/glide-text2im).

Writes:
  schedules/<name>_betas.npy, <name>_betas_100.npy     1000- and 100-step schedules (float64)
  schedules/respacing.json   {spec: timestep_map} from space_timesteps + SpacedDiffusion ("other_counts":
                             "steps|spec" for original step counts other than 1000), and
                             spaced alphas_cumprod for a few (schedule, spec) pairs in schedules/spaced_*.npy
  toy model: toy_W.npy [6,3], toy_P.npy [6,8,8], toy_freq.npy [6]  (float32); the denoised_fn's
             toy_inpaint_image.npy [1,3,8,8] and toy_inpaint_mask.npy [1,1,8,8]
  <case>/start.npy    x_T as passed to the reference loop (full, possibly guidance-doubled, batch)
  <case>/noise.npy    every randn_like the loop drew: [steps, rows, 3, 8, 8]
  <case>/samples.npy  x after each iteration, first `batch` rows: [steps, batch, 3, 8, 8]
  <case>/pred_xstart.npy  the x_0 prediction of each iteration, same shape
  cases.json          per case: schedule, respacing, sampler, guidance, clip, denoised, start_scale, batch

The toy model (the Swift test implements the same formula):
  out[b, o] = tanh( sum_c W[o, c] * x[b, c] + P[o] + sin(float(t[b]) * freq[o]) + row_bias[b] )
with row_bias = +0.3 for conditional rows and -0.2 for unconditional rows when guided, else 0;
t is the ORIGINAL timestep (the reference's _WrappedModel maps spaced -> original).
The inpainting-style denoised_fn keeps pixels where mask==1 at a fixed image: see `denoised` below.

Also, end to end with a real network: tiny_base_guided_10/ holds a guided ("10" steps, scale 3) DDPM run of
the tiny_base UNet from Tests/Fixtures/model/ (tokens.npy, mask.npy [2, text_ctx]: prompt row then the empty
row; start.npy [2,3,16,16]; noise.npy [10,2,3,16,16]; samples.npy [10,1,3,16,16]; case.json).
"""
import argparse
import json
import os

import numpy as np
import torch as th

from glide_text2im.gaussian_diffusion import get_named_beta_schedule
from glide_text2im.respace import SpacedDiffusion, space_timesteps
from guidance import guided_model_fn, recorded_noise

H = W_ = 8
C = 3


def toy_params():
    rng = np.random.RandomState(1234)
    W = (rng.randn(6, 3) * 0.6).astype(np.float32)
    P = (rng.randn(6, H, W_) * 0.3).astype(np.float32)
    freq = np.array([0.001, 0.0023, 0.0041, 0.0007, 0.0013, 0.0031], dtype=np.float32)
    return W, P, freq


def make_model(W, P, freq, guided):
    Wt, Pt, Ft = th.from_numpy(W), th.from_numpy(P), th.from_numpy(freq)

    def model(x, t):
        rows = x.shape[0]
        mix = th.einsum("oc,bchw->bohw", Wt, x)
        time = th.sin(t.float()[:, None] * Ft[None, :])[:, :, None, None]
        if guided:
            bias = th.tensor([0.3] * (rows // 2) + [-0.2] * (rows // 2), dtype=th.float32)
        else:
            bias = th.zeros(rows, dtype=th.float32)
        return th.tanh(mix + Pt[None] + time + bias[:, None, None, None])

    return model


def inpaint_tensors(rows):
    mask = th.zeros(rows, 1, H, W_)
    mask[:, :, :, : W_ // 2] = 1.0
    image = th.linspace(-0.9, 0.9, C * H * W_).reshape(1, C, H, W_).repeat(rows, 1, 1, 1)
    return image, mask


CASES = [
    # name, schedule, respacing, sampler, guidance, clip, denoised, start_scale, batch
    ("ddpm_10", "squaredcos_cap_v2", "10", "ddpm", None, True, False, 1.0, 2),
    ("ddpm_fast27_linear", "linear", "fast27", "ddpm", None, True, False, 1.0, 1),
    ("ddpm_guided_10", "squaredcos_cap_v2", "10", "ddpm", 3.0, True, False, 1.0, 1),
    ("ddpm_guided_inpaint_25", "squaredcos_cap_v2", "25", "ddpm", 4.0, True, True, 1.0, 1),
    ("ddim_10_noclip", "squaredcos_cap_v2", "ddim10", "ddim", None, False, False, 1.0, 1),
    ("ddim_50_linear_temp", "linear", "ddim50", "ddim", None, True, False, 0.997, 1),
    ("ddim_guided_10_3x3", "squaredcos_cap_v2", "10,10,10", "ddim", 2.5, True, False, 1.0, 2),
]

RESPACINGS = ["", "100", "fast27", "ddim50", "ddim25", "ddim10", "10", "27", "250", "10,10,10", "1,2,3",
              "50,50", "7,0,5", "10,10,3,2,2", "ddim7"]


def save(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, arr)


class _SmallVocab:
    def __init__(self, n_vocab):
        self.n_vocab = n_vocab


def tiny_base_guided(model_dir, out, respacing="10", guidance=3.0):
    """A guided DDPM run of the real tiny_base network (Tests/Fixtures/model/tiny_base, made by
    tools/make_model_goldens.py) through the genuine sampler, exactly as notebooks/text2im.ipynb does it."""
    import glide_text2im.model_creation as mc

    with open(os.path.join(model_dir, "options.json")) as f:
        options = json.load(f)
    n_vocab = options["n_vocab"]
    saved = mc.get_encoder
    mc.get_encoder = lambda: _SmallVocab(n_vocab)
    try:
        keys = mc.create_model.__code__.co_varnames[: mc.create_model.__code__.co_argcount]
        model = mc.create_model(**{k: options[k] for k in keys})
    finally:
        mc.get_encoder = saved
    model.load_state_dict(th.load(os.path.join(model_dir, "model.pt"), map_location="cpu"))
    model.eval()

    ctx, size, end = options["text_ctx"], options["image_size"], n_vocab - 1
    prompt = [5, 17, 3]                       # padded_tokens_and_mask(prompt, text_ctx) with end_token n_vocab-1
    tokens = [prompt + [end] * (ctx - len(prompt)), [end] * ctx]
    mask = [[True] * len(prompt) + [False] * (ctx - len(prompt)), [False] * ctx]
    model_kwargs = dict(tokens=th.tensor(tokens), mask=th.tensor(mask, dtype=th.bool))

    model_fn = guided_model_fn(model, guidance)

    diffusion = SpacedDiffusion(space_timesteps(options["diffusion_steps"], respacing),
                                betas=get_named_beta_schedule(options["noise_schedule"], options["diffusion_steps"]))
    th.manual_seed(77)
    shape = (2, 3, size, size)
    start = th.randn(*shape)
    drawn = []
    samples = []
    with recorded_noise(drawn):
        with th.no_grad():
            for o in diffusion.p_sample_loop_progressive(model_fn, shape, noise=start, clip_denoised=True,
                                                         model_kwargs=model_kwargs, device=th.device("cpu")):
                samples.append(o["sample"][:1].numpy().copy())
    d = os.path.join(out, "tiny_base_guided_10")
    save(f"{d}/tokens.npy", np.array(tokens, dtype=np.int64))
    save(f"{d}/mask.npy", np.array(mask, dtype=bool))
    save(f"{d}/start.npy", start.numpy().astype(np.float32))
    save(f"{d}/noise.npy", th.stack(drawn).numpy().astype(np.float32))
    save(f"{d}/samples.npy", np.stack(samples).astype(np.float32))
    with open(f"{d}/case.json", "w") as f:
        json.dump(dict(respacing=respacing, guidance=guidance, schedule=options["noise_schedule"],
                       diffusion_steps=options["diffusion_steps"], model="model/tiny_base"), f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/diffusion")
    ap.add_argument("--model-fixtures", default="Tests/Fixtures/model",
                    help="folder holding tiny_base/ (from tools/make_model_goldens.py)")
    args = ap.parse_args()
    out = args.out

    # Schedules and respacing.
    for name in ["squaredcos_cap_v2", "linear"]:
        betas = get_named_beta_schedule(name, 1000)
        save(f"{out}/schedules/{name}_betas.npy", betas.astype(np.float64))
    maps = {}
    for spec in RESPACINGS:
        maps[spec] = sorted(space_timesteps(1000, spec if spec else [1000]))
    spaced = {}
    for name in ["squaredcos_cap_v2", "linear"]:
        for spec in ["100", "fast27", "ddim50"]:
            d = SpacedDiffusion(space_timesteps(1000, spec), betas=get_named_beta_schedule(name, 1000))
            assert d.timestep_map == maps[spec]
            fn = f"spaced_{name}_{spec}.npy"
            # rows: betas, alphas_cumprod, posterior_log_variance_clipped, posterior_mean_coef1, coef2
            save(f"{out}/schedules/{fn}", np.stack([d.betas, d.alphas_cumprod, d.posterior_log_variance_clipped,
                                                    d.posterior_mean_coef1, d.posterior_mean_coef2]))
            spaced[f"{name}|{spec}"] = fn
    # Other original step counts (small models may train with fewer steps).
    other = {}
    for n, spec in [(200, "fast27"), (200, "ddim10"), (100, "25,25"), (100, "10"), (50, "ddim7"), (37, "5,4,3")]:
        other[f"{n}|{spec}"] = sorted(space_timesteps(n, spec))
    for name in ["squaredcos_cap_v2", "linear"]:
        save(f"{out}/schedules/{name}_betas_100.npy", get_named_beta_schedule(name, 100).astype(np.float64))
    with open(f"{out}/schedules/respacing.json", "w") as f:
        json.dump({"timestep_maps": maps, "spaced": spaced, "other_counts": other}, f)

    W, P, freq = toy_params()
    save(f"{out}/toy_W.npy", W)
    save(f"{out}/toy_P.npy", P)
    save(f"{out}/toy_freq.npy", freq)
    image, mask = inpaint_tensors(1)
    save(f"{out}/toy_inpaint_image.npy", image.numpy())
    save(f"{out}/toy_inpaint_mask.npy", mask.numpy())

    index = []
    for case_index, (name, schedule, spec, sampler, guidance, clip, denoised, start_scale, batch) in enumerate(CASES):
        th.manual_seed(1000 + case_index)
        diffusion = SpacedDiffusion(space_timesteps(1000, spec), betas=get_named_beta_schedule(schedule, 1000))
        rows = batch * (2 if guidance is not None else 1)
        shape = (rows, C, H, W_)
        model = make_model(W, P, freq, guidance is not None)
        fn = guided_model_fn(model, guidance) if guidance is not None else model
        start = th.randn(*shape)
        denoised_fn = None
        if denoised:
            image, mask = inpaint_tensors(rows)

            def denoised_fn(x_start, image=image, mask=mask):
                return x_start * (1 - mask) + image * mask

        drawn = []
        samples, preds = [], []
        with recorded_noise(drawn):
            loop = diffusion.p_sample_loop_progressive if sampler == "ddpm" else diffusion.ddim_sample_loop_progressive
            kwargs = dict(noise=start * start_scale, clip_denoised=clip, denoised_fn=denoised_fn,
                          device=th.device("cpu"))
            for o in loop(fn, shape, **kwargs):
                samples.append(o["sample"][:batch].numpy().copy())
                preds.append(o["pred_xstart"][:batch].numpy().copy())
        assert len(drawn) == len(samples) == diffusion.num_timesteps
        save(f"{out}/{name}/start.npy", start.numpy().astype(np.float32))
        save(f"{out}/{name}/noise.npy", th.stack(drawn).numpy().astype(np.float32))
        save(f"{out}/{name}/samples.npy", np.stack(samples).astype(np.float32))
        save(f"{out}/{name}/pred_xstart.npy", np.stack(preds).astype(np.float32))
        index.append(dict(name=name, schedule=schedule, respacing=spec, sampler=sampler, guidance=guidance,
                          clip=clip, denoised=denoised, start_scale=start_scale, batch=batch,
                          steps=diffusion.num_timesteps, timestep_map=diffusion.timestep_map))
    with open(f"{out}/cases.json", "w") as f:
        json.dump(index, f, indent=1)
    tiny = os.path.join(args.model_fixtures, "tiny_base")
    if os.path.exists(os.path.join(tiny, "model.pt")):
        tiny_base_guided(tiny, out)
    else:
        print(f"skipping the tiny_base sampling golden: {tiny}/model.pt not found")
    print(f"wrote {len(index)} cases to {out}")


if __name__ == "__main__":
    main()
