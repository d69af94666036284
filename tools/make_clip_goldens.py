#!/usr/bin/env python3
"""CLIP guidance goldens from the genuine reference (glide_text2im.clip.model_creation.CLIPModel.cond_fn).

Tiny configuration (committed, Tests/Fixtures/model/clip_guidance/): the tiny text and image encoders of
Tests/Fixtures/model/clip_text and clip_image (made by tools/make_model_goldens.py --clip-only, every
parameter perturbed) are loaded into a CLIPModel (logit_scale 100 as clip/config.yaml); the reference's own
cond_fn runs on seeded inputs. Written:

    x.npy          [2, 3, 8, 8] noised images in [-1, 1]
    timesteps.npy  [2] original timesteps (what respaced sampling passes to cond_fn)
    tokens.npy     [2, 10] CLIP tokens, lens.npy [2] their lengths (the text encoder's inputs)
    z_text.npy     text_embeddings (L2-normalised) [2, 16]
    z_image.npy    image_encoder((x + 1) * 127.5, t) before normalisation [2, 16]
    grad.npy       cond_fn(x, t) with grad_scale 3.0 (what `glide clip-grad --scale 3` must write)

Tiny CLIP-guided sampling (committed, Tests/Fixtures/model/clip_guided_sampling/): the tiny_base UNet of
Tests/Fixtures/model/tiny_base sampled as notebooks/clip_guided.ipynb does (no classifier-free guidance,
p_sample_loop with cond_fn, respacing "10"), guided by a tiny 16x16 noised image encoder (patch 4, made and
perturbed here: clip_image.pt + options.json) and the tiny clip_text encoder; the reference's start noise and
per-step noise are recorded (start.npy, noise.npy) with the GLIDE tokens/mask, CLIP tokens/lens and every
step's sample (samples.npy [10, 2, 3, 16, 16]).

Full size (NOT committed, --fullsize DIR): create_clip_model() with clip/config.yaml, every parameter of both
encoders overwritten with seeded values (the reference leaves Affine weights uninitialised), state dicts
saved as DIR/clip_image_enc.pt and DIR/clip_text_enc.pt, and a cond_fn golden for the prompt
"an oil painting of a corgi" (tokenized by the reference's SimpleTokenizer) at batch 1, in DIR/clip-grad/.
Also times cond_fn (median of --repeat runs, threads as torch sets them).

Regenerate:
    /tmp/venv/bin/python tools/make_clip_goldens.py                         # tiny fixture
    /tmp/venv/bin/python tools/make_clip_goldens.py --fullsize /tmp/glide-ckpts   # + full size
    /tmp/venv/bin/python tools/make_clip_goldens.py --bench /tmp/glide-ckpts --threads 1 --repeat 5   # time cond_fn
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch as th
from guidance import recorded_noise

from glide_text2im.clip.encoders import ImageEncoder, TextEncoder
from glide_text2im.clip.model_creation import CLIPModel, create_clip_model, default_config_path

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "Fixtures", "model")
GRAD_SCALE = 3.0


class TokenizedCLIPModel(CLIPModel):
    """The reference CLIPModel with prompts given as ready (tokens, lens): the tiny vocabulary cannot hold
    real BPE tokens. Everything else (text_embeddings, image_embeddings, cond_fn) is the reference's."""

    def encode_prompts(self, prompts):
        tokens = th.tensor([p[0] for p in prompts], dtype=th.long)
        lens = th.tensor([p[1] for p in prompts], dtype=th.long)
        return tokens, lens


def save(d, name, a):
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(a))


def perturb(module, seed):
    """Every parameter overwritten with seeded values of a sensible scale (LN gains near 1)."""
    g = th.Generator().manual_seed(seed)
    with th.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                v = th.randn(p.shape, generator=g) / np.sqrt(p[0].numel())
            elif name.endswith(".g"):
                v = 1.0 + 0.2 * th.randn(p.shape, generator=g)
            else:
                v = 0.2 * th.randn(p.shape, generator=g)
            p.copy_(v)


def tiny(out_dir):
    with open(os.path.join(FIXTURES, "clip_image", "options.json")) as f:
        c = json.load(f)
    cpu = th.device("cpu")
    text = TextEncoder(n_bpe_vocab=c["n_vocab"], max_text_len=c["max_text_len"], n_embd=c["n_embd"],
                       n_head=c["n_head_text"], n_xf_blocks=c["n_xf_blocks_text"],
                       n_head_state=c["n_head_state_text"], device=cpu)
    image = ImageEncoder(image_size=c["image_size"], patch_size=c["patch_size"], n_embd=c["n_embd"],
                         n_head=c["n_head_image"], n_xf_blocks=c["n_xf_blocks_image"],
                         n_head_state=c["n_head_state_image"], n_timestep=c["n_timesteps"], device=cpu)
    text.load_state_dict(th.load(os.path.join(FIXTURES, "clip_text", "model.pt")))
    image.load_state_dict(th.load(os.path.join(FIXTURES, "clip_image", "model.pt")))
    text.eval(); image.eval()
    logit_scale = th.tensor(np.log(c["logit_scale"]), dtype=th.float32)
    clip = TokenizedCLIPModel(config=c, text_encoder=text, image_encoder=image, logit_scale=logit_scale,
                              device=cpu, tokenizer=None)
    g = th.Generator().manual_seed(77)
    x = th.rand(2, 3, c["image_size"], c["image_size"], generator=g) * 2 - 1
    t = th.tensor([17, 912])
    tokens = th.randint(0, c["n_vocab"], (2, c["max_text_len"]), generator=g)
    lens = th.tensor([5, c["max_text_len"]])
    prompts = [(tokens[i].tolist(), int(lens[i])) for i in range(2)]
    cond_fn = clip.cond_fn(prompts, GRAD_SCALE)
    grad = cond_fn(x, t)
    with th.no_grad():
        z_text = clip.text_embeddings(prompts)
        z_image = image((x + 1) * 127.5, t)
    os.makedirs(out_dir, exist_ok=True)
    for k, v in dict(x=x, timesteps=t, tokens=tokens, lens=lens, z_text=z_text, z_image=z_image, grad=grad).items():
        save(out_dir, k, v.numpy())
    print(f"tiny cond_fn: grad scale {grad.abs().max().item():.4g}")


class _SmallVocab:
    def __init__(self, n_vocab):
        self.n_vocab = n_vocab


def tiny_guided_sampling(out_dir, respacing="10"):
    import glide_text2im.model_creation as mc
    from glide_text2im.gaussian_diffusion import get_named_beta_schedule
    from glide_text2im.respace import SpacedDiffusion, space_timesteps

    base_dir = os.path.join(FIXTURES, "tiny_base")
    with open(os.path.join(base_dir, "options.json")) as f:
        options = json.load(f)
    saved = mc.get_encoder
    mc.get_encoder = lambda: _SmallVocab(options["n_vocab"])
    try:
        keys = mc.create_model.__code__.co_varnames[: mc.create_model.__code__.co_argcount]
        model = mc.create_model(**{k: options[k] for k in keys})
    finally:
        mc.get_encoder = saved
    model.load_state_dict(th.load(os.path.join(base_dir, "model.pt"), map_location="cpu"))
    model.eval()

    with open(os.path.join(FIXTURES, "clip_text", "options.json")) as f:
        c = json.load(f)
    c = dict(c, image_size=options["image_size"], patch_size=4)
    cpu = th.device("cpu")
    text = TextEncoder(n_bpe_vocab=c["n_vocab"], max_text_len=c["max_text_len"], n_embd=c["n_embd"],
                       n_head=c["n_head_text"], n_xf_blocks=c["n_xf_blocks_text"],
                       n_head_state=c["n_head_state_text"], device=cpu)
    text.load_state_dict(th.load(os.path.join(FIXTURES, "clip_text", "model.pt")))
    image = ImageEncoder(image_size=c["image_size"], patch_size=c["patch_size"], n_embd=c["n_embd"],
                         n_head=c["n_head_image"], n_xf_blocks=c["n_xf_blocks_image"],
                         n_head_state=c["n_head_state_image"], n_timestep=c["n_timesteps"], device=cpu)
    perturb(image, 601)
    text.eval(); image.eval()
    os.makedirs(out_dir, exist_ok=True)
    th.save(image.state_dict(), os.path.join(out_dir, "clip_image.pt"))
    with open(os.path.join(out_dir, "options.json"), "w") as f:
        json.dump(c, f, indent=1, sort_keys=True)
    clip = TokenizedCLIPModel(config=c, text_encoder=text, image_encoder=image,
                              logit_scale=th.tensor(np.log(c["logit_scale"]), dtype=th.float32), device=cpu, tokenizer=None)

    ctx, size, end = options["text_ctx"], options["image_size"], options["n_vocab"] - 1
    prompts = [[5, 17, 3], [9, 2]]
    tokens = [p + [end] * (ctx - len(p)) for p in prompts]
    mask = [[True] * len(p) + [False] * (ctx - len(p)) for p in prompts]
    model_kwargs = dict(tokens=th.tensor(tokens), mask=th.tensor(mask, dtype=th.bool))
    g = th.Generator().manual_seed(79)
    clip_tokens = th.randint(0, c["n_vocab"], (2, c["max_text_len"]), generator=g)
    clip_lens = th.tensor([4, 7])
    cond_fn = clip.cond_fn([(clip_tokens[i].tolist(), int(clip_lens[i])) for i in range(2)], GRAD_SCALE)

    diffusion = SpacedDiffusion(space_timesteps(options["diffusion_steps"], respacing),
                                betas=get_named_beta_schedule(options["noise_schedule"], options["diffusion_steps"]))
    th.manual_seed(80)
    shape = (2, 3, size, size)
    start = th.randn(*shape)
    drawn = []
    samples = []
    with recorded_noise(drawn):
        for o in diffusion.p_sample_loop_progressive(model, shape, noise=start, clip_denoised=True, cond_fn=cond_fn,
                                                     model_kwargs=model_kwargs, device=cpu):
            samples.append(o["sample"].detach().numpy().copy())
    for k, v in dict(tokens=np.array(tokens, dtype=np.int64), mask=np.array(mask, dtype=bool),
                     clip_tokens=clip_tokens.numpy(), clip_lens=clip_lens.numpy(),
                     start=start.numpy(), noise=th.stack(drawn).numpy(), samples=np.stack(samples)).items():
        save(out_dir, k, v)
    unguided = np.abs(samples[-1]).max()
    print(f"tiny CLIP-guided sampling: {len(samples)} steps, final scale {unguided:.3f}")


def fullsize(ckpt_dir, repeat):
    th.manual_seed(0)
    clip = create_clip_model(device=th.device("cpu"))
    perturb(clip.image_encoder, 501)
    perturb(clip.text_encoder, 502)
    clip.image_encoder.eval(); clip.text_encoder.eval()
    os.makedirs(ckpt_dir, exist_ok=True)
    th.save(clip.image_encoder.state_dict(), os.path.join(ckpt_dir, "clip_image_enc.pt"))
    th.save(clip.text_encoder.state_dict(), os.path.join(ckpt_dir, "clip_text_enc.pt"))
    out = os.path.join(ckpt_dir, "clip-grad")
    os.makedirs(out, exist_ok=True)
    prompt = "an oil painting of a corgi"
    tokens, lens = clip.encode_prompts([prompt])
    g = th.Generator().manual_seed(78)
    x = th.randn(1, 3, 64, 64, generator=g).clamp(-3, 3)
    t = th.tensor([640])
    cond_fn = clip.cond_fn([prompt], GRAD_SCALE)
    grad = cond_fn(x, t)
    with th.no_grad():
        z_text = clip.text_embeddings([prompt])
        z_image = clip.image_encoder((x + 1) * 127.5, t)
    for k, v in dict(x=x, timesteps=t, tokens=tokens, lens=lens, z_text=z_text, z_image=z_image, grad=grad).items():
        save(out, k, v.numpy())
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        cond_fn(x, t)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"fullsize cond_fn: grad scale {grad.abs().max().item():.4g}; median over {repeat}: "
          f"{statistics.median(wall):.3f} s wall, {statistics.median(cpu):.3f} s process CPU "
          f"(torch threads {th.get_num_threads()})")


def bench(ckpt_dir, repeat, threads):
    """Times the reference's cond_fn on the full-size checkpoints and golden input written by fullsize()."""
    if threads:
        th.set_num_threads(threads)
    clip = create_clip_model(device=th.device("cpu"))
    clip.image_encoder.load_state_dict(th.load(os.path.join(ckpt_dir, "clip_image_enc.pt")))
    clip.text_encoder.load_state_dict(th.load(os.path.join(ckpt_dir, "clip_text_enc.pt")))
    clip.image_encoder.eval(); clip.text_encoder.eval()
    d = os.path.join(ckpt_dir, "clip-grad")
    x, t = th.from_numpy(np.load(os.path.join(d, "x.npy"))), th.from_numpy(np.load(os.path.join(d, "timesteps.npy")))
    cond_fn = clip.cond_fn(["an oil painting of a corgi"], GRAD_SCALE)
    grad = cond_fn(x, t)
    ref = np.load(os.path.join(d, "grad.npy"))
    assert np.abs(grad.numpy() - ref).max() <= 1e-6 * np.abs(ref).max(), "checkpoints do not match the golden"
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        cond_fn(x, t)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"torch cond_fn (batch 1, threads {th.get_num_threads()}): median over {repeat}: "
          f"{statistics.median(wall):.3f} s wall, {statistics.median(cpu):.3f} s process CPU")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(FIXTURES, "clip_guidance"))
    ap.add_argument("--fullsize", help="directory for the full-size checkpoints and golden (not committed)")
    ap.add_argument("--skip-tiny", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bench", help="only time cond_fn on the full-size files already in this directory")
    ap.add_argument("--threads", type=int, help="torch threads for --bench")
    args = ap.parse_args()
    if args.bench:
        bench(args.bench, args.repeat, args.threads)
        return
    if not args.skip_tiny:
        tiny(args.out)
        tiny_guided_sampling(os.path.join(FIXTURES, "clip_guided_sampling"))
    if args.fullsize:
        fullsize(args.fullsize, args.repeat)


if __name__ == "__main__":
    main()
