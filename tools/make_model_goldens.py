#!/usr/bin/env python3
"""Make the network goldens in Tests/Fixtures/model/ with the genuine reference code.

For each tiny configuration (base, super-res, inpaint, super-res+inpaint) this script builds the
model with `glide_text2im.model_creation.create_model` (vocabulary shrunk so the fixture stays
small), perturbs EVERY parameter with a seeded generator (GLIDE zero-initialises several convs and
leaves the positional/padding embeddings uninitialised), and writes into
`Tests/Fixtures/model/<name>/`:

    model.pt          torch.save(state_dict) (zip format)
    options.json      the create_model options, with the reference's names, plus n_vocab
    x.npy, timesteps.npy, tokens.npy, mask.npy, [low_res.npy, inpaint_image.npy, inpaint_mask.npy]
    out.npy           model(x, timesteps, tokens=..., mask=..., ...)
    act_*.npy         per-block activations (base only): text transformer output (xf_out, NCL),
                      xf_proj, emb, every input block, the middle block, every output block

Regenerate (needs PyTorch and glide_text2im importable):

    /tmp/venv/bin/python tools/make_model_goldens.py [--out Tests/Fixtures/model]

With `--fullsize CKPT.pt --fullsize-out DIR [--fullsize-model base|upsample|...]` it also runs a full-size
released configuration on one input (base: batch 2, guidance-style cond/uncond rows; upsamplers: batch 1)
and writes inputs and the output there (not into the repository): the checkpoint comes from
tools/make_fullsize_checkpoint.py.
"""
import argparse
import json
import os

import numpy as np
import torch as th

import glide_text2im.model_creation as mc


class SmallVocab:
    """Stands in for the BPE encoder: the model only reads n_vocab from it."""

    def __init__(self, n_vocab):
        self.n_vocab = n_vocab


def perturb(model, seed):
    """Overwrite every parameter with seeded random values of a sensible scale."""
    g = th.Generator().manual_seed(seed)
    with th.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("embedding") or name.endswith("embedding.weight"):
                v = th.randn(p.shape, generator=g) * 0.5
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                v = th.randn(p.shape, generator=g) / np.sqrt(fan_in)
            elif ("norm" in name or "ln" in name or "in_layers.0" in name or "out_layers.0" in name
                  or name.startswith("out.0")) and name.endswith("weight"):
                v = 1.0 + 0.2 * th.randn(p.shape, generator=g)
            else:
                v = 0.2 * th.randn(p.shape, generator=g)
            p.copy_(v.to(p.dtype))


TINY_BASE = dict(
    mc.model_and_diffusion_defaults(),
    image_size=16, num_channels=32, num_res_blocks=1, channel_mult="1,1",
    num_heads=1, num_head_channels=16, num_heads_upsample=-1, attention_resolutions="16,8",
    dropout=0.0, text_ctx=8, xf_width=32, xf_layers=2, xf_heads=2, xf_final_ln=True,
    xf_padding=True, use_scale_shift_norm=True, resblock_updown=True, use_fp16=False,
)
# The super-res variants are single-level (8x8) to keep the fixtures small: what they add is the
# input concatenation (bilinear low_res upsampling, masked image, mask).
TINY_SUPER_RES = dict(
    TINY_BASE, image_size=8, channel_mult="1", attention_resolutions="8",
    num_res_blocks=1, super_res=True, noise_schedule="linear",
)
# The inpaint variant exercises the other switches: conv resampling instead of resblock up/down,
# additive (not scale-shift) conditioning, num_heads instead of num_head_channels, no final LN,
# no padding embedding, 2 res blocks.
TINY_INPAINT = dict(
    TINY_BASE, inpaint=True, resblock_updown=False, use_scale_shift_norm=False,
    num_heads=2, num_head_channels=-1, num_heads_upsample=4, attention_resolutions="8",
    xf_final_ln=False, xf_padding=False, num_res_blocks=2, xf_heads=4,
)
TINY_SUPER_RES_INPAINT = dict(TINY_SUPER_RES, inpaint=True)

N_VOCAB = 40


def create(options, n_vocab):
    saved = mc.get_encoder
    mc.get_encoder = lambda: SmallVocab(n_vocab)
    try:
        keys = mc.create_model.__code__.co_varnames[: mc.create_model.__code__.co_argcount]
        model = mc.create_model(**{k: options[k] for k in keys})
    finally:
        mc.get_encoder = saved
    model.eval()
    return model


def save(d, name, arr):
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(arr))


def make_inputs(options, n_vocab, g, batch=2):
    size = options["image_size"]
    ctx = options["text_ctx"]
    x = th.randn(batch, 3, size, size, generator=g)
    timesteps = th.tensor([17, 931][:batch], dtype=th.int64)
    tokens = th.full((batch, ctx), n_vocab - 1, dtype=th.int64)
    mask = th.zeros(batch, ctx, dtype=th.bool)
    n_real = max(1, ctx - 3)
    tokens[0, :n_real] = th.randint(0, n_vocab - 1, (n_real,), generator=g)
    mask[0, :n_real] = True
    if batch > 1:
        tokens[1, :2] = th.randint(0, n_vocab - 1, (2,), generator=g)
        mask[1, :2] = True
    inputs = dict(x=x, timesteps=timesteps, tokens=tokens, mask=mask)
    if options.get("super_res"):
        inputs["low_res"] = th.randn(batch, 3, size // 2 - 1, size // 2 - 1, generator=g).clamp(-1, 1)
    if options.get("inpaint"):
        inputs["inpaint_image"] = th.rand(batch, 3, size, size, generator=g) * 2 - 1
        m = th.zeros(batch, 1, size, size)
        m[:, :, : size // 3] = 1.0
        m[1, :, :, : size // 2] = 1.0
        inputs["inpaint_mask"] = m
    return inputs


def run_variant(out_dir, name, options, seed, activations=False):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    model = create(options, N_VOCAB)
    perturb(model, seed)
    th.save(model.state_dict(), os.path.join(d, "model.pt"))
    with open(os.path.join(d, "options.json"), "w") as f:
        json.dump(dict(options, n_vocab=N_VOCAB), f, indent=1, sort_keys=True)
    g = th.Generator().manual_seed(seed + 1)
    inputs = make_inputs(options, N_VOCAB, g)
    for k, v in inputs.items():
        save(d, k, v.numpy())

    acts = {}
    hooks = []
    if activations:
        def hook(key):
            def f(_m, _i, o):
                acts[key] = o.detach().numpy().copy()
            return f
        for i, blk in enumerate(model.input_blocks):
            hooks.append(blk.register_forward_hook(hook(f"input_block{i}")))
        hooks.append(model.middle_block.register_forward_hook(hook("middle_block")))
        for i, blk in enumerate(model.output_blocks):
            hooks.append(blk.register_forward_hook(hook(f"output_block{i}")))
        hooks.append(model.time_embed.register_forward_hook(hook("time_embed")))
    with th.no_grad():
        kwargs = {k: v for k, v in inputs.items() if k not in ("x", "timesteps")}
        out = model(inputs["x"], inputs["timesteps"], **kwargs)
        if activations:
            text = model.get_text_emb(inputs["tokens"], inputs["mask"])
            acts["xf_out"] = text["xf_out"].numpy()
            acts["xf_proj"] = text["xf_proj"].numpy()
    for h in hooks:
        h.remove()
    save(d, "out", out.numpy())
    for k, v in acts.items():
        save(d, "act_" + k, v)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n_params} params, out {tuple(out.shape)} scale {out.abs().max().item():.3f}")


TINY_CLIP = dict(
    logit_scale=100.0, beta_schedule="squaredcos_cap_v2", n_timesteps=1000, image_size=8, patch_size=2,
    n_vocab=50, max_text_len=10, n_embd=16, n_head_state_text=16, n_head_text=2, n_xf_blocks_text=2,
    n_head_state_image=16, n_head_image=2, n_xf_blocks_image=2,
)


def run_clip(out_dir, seed=50):
    """Tiny CLIP text and image encoders (glide_text2im.clip.encoders), forward outputs (not normalised)."""
    from glide_text2im.clip.encoders import ImageEncoder, TextEncoder

    c = TINY_CLIP
    cpu = th.device("cpu")
    encoders = {
        "clip_text": TextEncoder(n_bpe_vocab=c["n_vocab"], max_text_len=c["max_text_len"], n_embd=c["n_embd"],
                                 n_head=c["n_head_text"], n_xf_blocks=c["n_xf_blocks_text"],
                                 n_head_state=c["n_head_state_text"], device=cpu),
        "clip_image": ImageEncoder(image_size=c["image_size"], patch_size=c["patch_size"], n_embd=c["n_embd"],
                                   n_head=c["n_head_image"], n_xf_blocks=c["n_xf_blocks_image"],
                                   n_head_state=c["n_head_state_image"], n_timestep=c["n_timesteps"], device=cpu),
    }
    for i, (name, enc) in enumerate(encoders.items()):
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        enc.eval()
        perturb(enc, seed + i)
        th.save(enc.state_dict(), os.path.join(d, "model.pt"))
        with open(os.path.join(d, "options.json"), "w") as f:
            json.dump(c, f, indent=1, sort_keys=True)
        g = th.Generator().manual_seed(seed + 10 + i)
        with th.no_grad():
            if name == "clip_text":
                tokens = th.randint(0, c["n_vocab"], (2, c["max_text_len"]), generator=g)
                lens = th.tensor([4, c["max_text_len"]])
                out = enc(tokens, lens)
                save(d, "tokens", tokens.numpy())
                save(d, "text_len", lens.numpy())
            else:
                image = (th.rand(2, 3, c["image_size"], c["image_size"], generator=g) * 2 - 1 + 1) * 127.5
                t = th.tensor([3, 999])
                out = enc(image, t)
                save(d, "image", image.numpy())
                save(d, "timesteps", t.numpy())
        save(d, "out", out.numpy())
        print(f"{name}: {sum(p.numel() for p in enc.parameters())} params, out {tuple(out.shape)}")


def run_fullsize(ckpt, out_dir, model_name="base", seed=1234):
    """One forward of a full-size released configuration on the checkpoint's weights (batch 2 for the base
    models as guided sampling runs them, batch 1 for the upsamplers)."""
    os.makedirs(out_dir, exist_ok=True)
    upsampler = model_name.startswith("upsample")
    options = dict(mc.model_and_diffusion_defaults_upsampler() if upsampler else mc.model_and_diffusion_defaults(),
                   use_fp16=False, inpaint=model_name.endswith("inpaint"))
    model = create(options, 50257)
    model.load_state_dict(th.load(ckpt, map_location="cpu"))
    with open(os.path.join(out_dir, "options.json"), "w") as f:
        json.dump(dict(options, n_vocab=50257), f, indent=1, sort_keys=True)
    g = th.Generator().manual_seed(seed)
    batch = 1 if upsampler else 2
    inputs = make_inputs(options, 50257, g, batch=batch)
    inputs["tokens"][:, :] = 50256
    inputs["tokens"][0, :5] = th.tensor([257, 3290, 286, 257, 3797])
    inputs["mask"][:, :] = False
    inputs["mask"][0, :5] = True
    if upsampler:
        inputs["low_res"] = th.rand(batch, 3, 64, 64, generator=g) * 2 - 1
    for k, v in inputs.items():
        save(out_dir, k, v.numpy())
    with th.no_grad():
        kwargs = {k: v for k, v in inputs.items() if k not in ("x", "timesteps")}
        out = model(inputs["x"], inputs["timesteps"], **kwargs)
    save(out_dir, "out", out.numpy())
    print(f"fullsize {model_name}: out {tuple(out.shape)} scale {out.abs().max().item():.3f}")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "Tests", "Fixtures", "model"))
    ap.add_argument("--fullsize", help="full-size checkpoint (.pt) to run")
    ap.add_argument("--fullsize-model", default="base", choices=["base", "upsample", "base-inpaint", "upsample-inpaint"])
    ap.add_argument("--fullsize-out", default="/tmp/glide-goldens/base-forward")
    ap.add_argument("--skip-tiny", action="store_true")
    ap.add_argument("--clip-only", action="store_true", help="only the tiny CLIP encoders")
    args = ap.parse_args()
    th.manual_seed(0)
    if args.clip_only:
        run_clip(args.out)
    elif not args.skip_tiny:
        run_variant(args.out, "tiny_base", TINY_BASE, seed=10, activations=True)
        run_variant(args.out, "tiny_super_res", TINY_SUPER_RES, seed=20)
        run_variant(args.out, "tiny_inpaint", TINY_INPAINT, seed=30)
        run_variant(args.out, "tiny_super_res_inpaint", TINY_SUPER_RES_INPAINT, seed=40)
        run_clip(args.out)
    if args.fullsize:
        run_fullsize(args.fullsize, args.fullsize_out, args.fullsize_model)


if __name__ == "__main__":
    main()
