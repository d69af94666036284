#!/usr/bin/env python3
"""Goldens for the multi-stage pipeline (Sources/GlideModel/Pipeline), made with the genuine glide_text2im.

Every case follows the notebooks' recipes line for line (notebooks/text2im.ipynb for the upsampler,
notebooks/inpaint.ipynb for inpainting) with tiny perturbed models and replayed noise:

  upsample_fast27        net's Tests/Fixtures/model/tiny_super_res (SuperResText2ImUNet), batch 2 (one row per
                         image, two prompts, NO guidance), low_res quantized to 8 bits and back, fast27 respacing,
                         ddim_sample_loop, start noise randn * upsample_temp (0.997). Output 32x32 from 8x8.
  inpaint_base           net's tiny_inpaint (InpaintText2ImUNet) at 64x64: ../shared/images/grass.png read as the
                         notebook's read_image(path, 64), the notebook's mask (top 20 rows of 64 kept),
                         guidance 5.0 (the notebook's model_fn), denoised_fn forcing the known region,
                         p_sample_loop over 6 steps.
  inpaint_upsample_fast27  net's tiny_super_res_inpaint (SuperResInpaintText2ImUnet): low_res quantized,
                         inpaint_image = read_image(grass, 32) * mask, the 8x8 mask (top 3 rows kept)
                         upsampled with F.interpolate(mode='nearest'), denoised_fn, p_sample_loop (DDPM) over
                         fast27, start noise randn * 0.997. Output 32x32.
  e2e_base_inpaint_case  our own e2e_base_inpaint model (below) through the prompt path: tokens made by the
                         reference Encoder from the small BPE vocabulary in tokenizer/, guidance 5.0, forcing,
                         p_sample_loop over the "ddim3" timesteps (0, 334, 668) at 64x64.

Also written (used by the end-to-end and CLI tests, which sample with our own RNG and check the kept region):
  tokenizer/encoder.json.gz, tokenizer/vocab.bpe.gz   a GPT-2-format BPE vocabulary: the 256 byte symbols,
                         a few merges and <|endoftext|> (n_vocab 264), so the real tokenizer code runs on a tiny model
  e2e_base_inpaint/      InpaintText2ImUNet, 64x64, channel_mult 1,1,1,1, attention at 8x8, xf width 32
  e2e_upsample_inpaint/  SuperResInpaintText2ImUnet, 256x256, channel_mult 1,1,1,1,1,1, attention at 8x8
  e2e_upsample/          SuperResText2ImUNet, a small 4 -> 16 upsampler (channel_mult 1,1) for `glide upsample`
  (all three: 32 channels, additive timestep conditioning and conv resampling, the smallest layouts)
  (model.pt stored as float16 to keep the repository small; the goldens use exactly those f16 values in f32;
   options.json holds the create_model options plus n_vocab.)

Per case folder: inputs (tokens.npy int64, mask.npy bool, low_res.npy raw before quantization,
inpaint_image.npy unmasked source, inpaint_mask.npy), start.npy (x_T BEFORE the upsample_temp scaling, first
batch rows), noise.npy (every randn_like the loop drew, first batch rows: [steps, batch, 3, H, W]; absent
for DDIM), first_sample.npy (x after iteration 0), out.npy (final sample, [batch, 3, H, W]).
cases.json lists each case's settings and the sha256 of the model file used.

Regenerate (needs PyTorch, Pillow and glide_text2im importable):

    /tmp/venv/bin/python tools/make_pipeline_goldens.py [--out Tests/Fixtures/pipeline]
"""
import argparse
import gzip
import hashlib
import io
import json
import os

import numpy as np
import torch as th
import torch.nn.functional as F
from PIL import Image

import glide_text2im.model_creation as mc
from glide_text2im.gaussian_diffusion import get_named_beta_schedule
from glide_text2im.respace import SpacedDiffusion, space_timesteps
from glide_text2im.tokenizer.bpe import Encoder, bytes_to_unicode
from guidance import guided_model_fn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
GRASS = os.path.join(ROOT, "..", "shared", "images", "grass.png")
NET_FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "model")

MERGES = [("Ġ", "c"), ("o", "r"), ("g", "i"), ("Ġc", "or"), ("Ġcor", "gi"), ("Ġ", "f"), ("e", "l")]


class SmallVocab:
    def __init__(self, n_vocab):
        self.n_vocab = n_vocab


# ---------------------------------------------------------------------------------------------- tokenizer

def write_gz(path, data: bytes):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def make_tokenizer(out):
    """A GPT-2-format vocabulary: byte symbols (ids 0..255), merge results, <|endoftext|> last."""
    symbols = list(bytes_to_unicode().values())
    encoder = {s: i for i, s in enumerate(symbols)}
    for a, b in MERGES:
        encoder[a + b] = len(encoder)
    encoder["<|endoftext|>"] = len(encoder)
    # Stored as tiny-*.gz so they are never mistaken for the released vocabulary; the tests copy them
    # under the standard names (TestPaths.tinyTokenizerDirectory).
    d = os.path.join(out, "tiny-tokenizer")
    os.makedirs(d, exist_ok=True)
    write_gz(os.path.join(d, "tiny-encoder.json.gz"), json.dumps(encoder).encode("utf-8"))
    bpe = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES)
    write_gz(os.path.join(d, "tiny-vocab.bpe.gz"), bpe.encode("utf-8"))
    # The reference's get_encoder() parsing, on our files.
    bpe_merges = [tuple(s.split()) for s in bpe.split("\n")[1:-1]]
    return Encoder(encoder=encoder, bpe_merges=bpe_merges)


# ---------------------------------------------------------------------------------------------- models

def perturb(model, seed):
    """Overwrite every parameter with seeded random values (GLIDE zero-inits several convs)."""
    g = th.Generator().manual_seed(seed)
    with th.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("embedding") or name.endswith("embedding.weight"):
                v = th.randn(p.shape, generator=g) * 0.5
            elif p.dim() >= 2:
                v = th.randn(p.shape, generator=g) / np.sqrt(p[0].numel())
            elif ("norm" in name or "ln" in name or "in_layers.0" in name or "out_layers.0" in name
                  or name.startswith("out.0")) and name.endswith("weight"):
                v = 1.0 + 0.2 * th.randn(p.shape, generator=g)
            else:
                v = 0.2 * th.randn(p.shape, generator=g)
            # Store f16-representable values so the f16 file holds exactly the weights the goldens used.
            p.copy_(v.half().float())


E2E_BASE = dict(
    mc.model_and_diffusion_defaults(),
    image_size=64, num_channels=32, num_res_blocks=1, channel_mult="1,1,1,1", attention_resolutions="8",
    num_heads=1, num_head_channels=16, num_heads_upsample=-1, dropout=0.0, text_ctx=16,
    xf_width=32, xf_layers=1, xf_heads=2, use_fp16=False, inpaint=True,
    use_scale_shift_norm=False, resblock_updown=False,
)
E2E_UP_INPAINT = dict(
    mc.model_and_diffusion_defaults_upsampler(),
    image_size=256, num_channels=32, num_res_blocks=1, channel_mult="1,1,1,1,1,1", attention_resolutions="8",
    num_heads=1, num_head_channels=16, num_heads_upsample=-1, dropout=0.0, text_ctx=16,
    xf_width=32, xf_layers=1, xf_heads=2, use_fp16=False, use_scale_shift_norm=False, resblock_updown=False,
    inpaint=True,
)
E2E_UP = dict(E2E_UP_INPAINT, image_size=16, channel_mult="1,1", inpaint=False)


def build(options, tokenizer):
    """create_model with our small tokenizer standing in for the released one."""
    saved = mc.get_encoder
    mc.get_encoder = lambda: tokenizer
    try:
        keys = mc.create_model.__code__.co_varnames[: mc.create_model.__code__.co_argcount]
        model = mc.create_model(**{k: options[k] for k in keys})
    finally:
        mc.get_encoder = saved
    model.eval()
    return model


def make_e2e_model(out, name, options, tokenizer, seed):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    model = build(options, tokenizer)
    perturb(model, seed)
    th.save({k: v.half() for k, v in model.state_dict().items()}, os.path.join(d, "model.pt"))
    with open(os.path.join(d, "options.json"), "w") as f:
        json.dump(dict(options, n_vocab=tokenizer.n_vocab), f, indent=1, sort_keys=True)
    n = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n} params")
    return model


def load_net_model(name):
    """One of net's tiny fixtures (Tests/Fixtures/model/<name>): options.json + model.pt."""
    d = os.path.join(NET_FIXTURES, name)
    with open(os.path.join(d, "options.json")) as f:
        options = json.load(f)
    saved = mc.get_encoder
    mc.get_encoder = lambda: SmallVocab(options["n_vocab"])
    try:
        keys = mc.create_model.__code__.co_varnames[: mc.create_model.__code__.co_argcount]
        model = mc.create_model(**{k: options[k] for k in keys})
    finally:
        mc.get_encoder = saved
    model.load_state_dict(th.load(os.path.join(d, "model.pt"), map_location="cpu"))
    model.eval()
    return model, options, os.path.join(d, "model.pt")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------------------------------------- notebook pieces

def read_image(path, size):
    """The inpaint notebook's read_image."""
    pil_img = Image.open(path).convert("RGB")
    pil_img = pil_img.resize((size, size), resample=Image.BICUBIC)
    img = np.array(pil_img)
    return th.from_numpy(img)[None].permute(0, 3, 1, 2).float() / 127.5 - 1


def quantize(samples):
    return ((samples + 1) * 127.5).round() / 127.5 - 1


def run_loop(diffusion, fn, shape, noise, sampler, model_kwargs, denoised_fn, batch):
    """Runs the reference loop, recording every randn_like draw and the samples."""
    drawn = []
    real = th.randn_like

    def recording(x, *a, **k):
        n = real(x, *a, **k)
        drawn.append(n.clone())
        return n

    th.randn_like = recording
    samples = []
    try:
        loop = diffusion.p_sample_loop_progressive if sampler == "ddpm" else diffusion.ddim_sample_loop_progressive
        with th.no_grad():
            for o in loop(fn, shape, noise=noise, clip_denoised=True, denoised_fn=denoised_fn,
                          model_kwargs=model_kwargs, device=th.device("cpu"), progress=False):
                samples.append(o["sample"][:batch].clone())
    finally:
        th.randn_like = real
    assert len(samples) == diffusion.num_timesteps
    return samples, th.stack([n[:batch] for n in drawn])


def save(d, name, arr):
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(arr))


def tokens_and_mask(rows, ctx, end_token):
    tokens, masks = [], []
    for r in rows:
        r = list(r)[:ctx]
        tokens.append(r + [end_token] * (ctx - len(r)))
        masks.append([True] * len(r) + [False] * (ctx - len(r)))
    return th.tensor(tokens, dtype=th.int64), th.tensor(masks, dtype=th.bool)


# ---------------------------------------------------------------------------------------------- cases

def case_upsample(out, index):
    model, options, path = load_net_model("tiny_super_res")
    g = th.Generator().manual_seed(11)
    batch, low, size = 2, 8, 32
    end = options["n_vocab"] - 1
    tokens, mask = tokens_and_mask([[3, 17, 5, 22], [30, 1]], options["text_ctx"], end)
    low_res_raw = (th.rand(batch, 3, low, low, generator=g) * 2 - 1)
    start = th.randn(batch, 3, size, size, generator=g)
    diffusion = SpacedDiffusion(space_timesteps(1000, "fast27"), betas=get_named_beta_schedule(options["noise_schedule"], 1000))
    model_kwargs = dict(low_res=quantize(low_res_raw), tokens=tokens, mask=mask)
    samples, _ = run_loop(diffusion, model, (batch, 3, size, size), start * 0.997, "ddim", model_kwargs, None, batch)
    d = os.path.join(out, "upsample_fast27")
    for k, v in dict(tokens=tokens, mask=mask, low_res=low_res_raw, start=start,
                     first_sample=samples[0], out=samples[-1]).items():
        save(d, k, v.numpy())
    index.append(dict(name="upsample_fast27", model="model/tiny_super_res/model.pt", model_sha256=sha256(path),
                      respacing="fast27", sampler="ddim", guidance=None, upsample_temp=0.997, batch=batch,
                      size=size, low_res_size=low, steps=diffusion.num_timesteps, quantize_low_res=True))
    print(f"upsample_fast27: out scale {samples[-1].abs().max().item():.3f}")


def case_inpaint_base(out, index):
    model, options, path = load_net_model("tiny_inpaint")
    g = th.Generator().manual_seed(12)
    batch, size, guidance, spec = 1, 64, 5.0, "6"
    end = options["n_vocab"] - 1
    source = read_image(GRASS, size)
    mask64 = th.ones_like(source)[:, :1]
    mask64[:, :, 20:] = 0
    tokens, mask = tokens_and_mask([[7, 8, 9]] * batch + [[]] * batch, options["text_ctx"], end)
    full = 2 * batch
    model_kwargs = dict(tokens=tokens, mask=mask,
                        inpaint_image=(source * mask64).repeat(full, 1, 1, 1),
                        inpaint_mask=mask64.repeat(full, 1, 1, 1))

    def denoised_fn(x_start):
        return x_start * (1 - model_kwargs["inpaint_mask"]) + model_kwargs["inpaint_image"] * model_kwargs["inpaint_mask"]

    start = th.randn(full, 3, size, size, generator=g)
    diffusion = SpacedDiffusion(space_timesteps(1000, spec), betas=get_named_beta_schedule(options["noise_schedule"], 1000))
    samples, noise = run_loop(diffusion, guided_model_fn(model, guidance), (full, 3, size, size), start, "ddpm",
                              model_kwargs, denoised_fn, batch)
    d = os.path.join(out, "inpaint_base")
    for k, v in dict(tokens=tokens, mask=mask, inpaint_image=source, inpaint_mask=mask64, start=start[:batch],
                     noise=noise, first_sample=samples[0], out=samples[-1]).items():
        save(d, k, v.numpy())
    index.append(dict(name="inpaint_base", model="model/tiny_inpaint/model.pt", model_sha256=sha256(path),
                      respacing=spec, sampler="ddpm", guidance=guidance, upsample_temp=1.0, batch=batch, size=size,
                      steps=diffusion.num_timesteps))
    print(f"inpaint_base: out scale {samples[-1].abs().max().item():.3f}")


def case_inpaint_upsample(out, index):
    model, options, path = load_net_model("tiny_super_res_inpaint")
    g = th.Generator().manual_seed(13)
    batch, low, size = 1, 8, 32
    end = options["n_vocab"] - 1
    tokens, mask = tokens_and_mask([[4, 4, 10, 2, 19]], options["text_ctx"], end)
    low_res_raw = th.rand(batch, 3, low, low, generator=g) * 2 - 1
    source = read_image(GRASS, size)
    mask_low = th.ones(batch, 1, low, low)
    mask_low[:, :, 3:] = 0
    mask_up = F.interpolate(mask_low, (size, size), mode="nearest")
    model_kwargs = dict(low_res=quantize(low_res_raw), tokens=tokens, mask=mask,
                        inpaint_image=(source * mask_up).repeat(batch, 1, 1, 1),
                        inpaint_mask=mask_up.repeat(batch, 1, 1, 1))

    def denoised_fn(x_start):
        return x_start * (1 - model_kwargs["inpaint_mask"]) + model_kwargs["inpaint_image"] * model_kwargs["inpaint_mask"]

    start = th.randn(batch, 3, size, size, generator=g)
    diffusion = SpacedDiffusion(space_timesteps(1000, "fast27"), betas=get_named_beta_schedule(options["noise_schedule"], 1000))
    samples, noise = run_loop(diffusion, model, (batch, 3, size, size), start * 0.997, "ddpm", model_kwargs,
                              denoised_fn, batch)
    d = os.path.join(out, "inpaint_upsample_fast27")
    for k, v in dict(tokens=tokens, mask=mask, low_res=low_res_raw, inpaint_image=source, inpaint_mask=mask_low,
                     start=start, noise=noise, first_sample=samples[0], out=samples[-1]).items():
        save(d, k, v.numpy())
    index.append(dict(name="inpaint_upsample_fast27", model="model/tiny_super_res_inpaint/model.pt",
                      model_sha256=sha256(path), respacing="fast27", sampler="ddpm", guidance=None,
                      upsample_temp=0.997, batch=batch, size=size, low_res_size=low, steps=diffusion.num_timesteps,
                      quantize_low_res=True))
    print(f"inpaint_upsample_fast27: out scale {samples[-1].abs().max().item():.3f}")


def case_e2e_base(out, index, model, tokenizer, prompt):
    g = th.Generator().manual_seed(14)
    # "ddim3" spacing (timesteps 0, 334, 668) with the DDPM sampler: the spacings the notebook uses start at
    # t = 999, where the squaredcos schedule's 1/sqrt(alpha_bar) ~ 2e4 multiplies float32 rounding differences of
    # the guided eps into visible x0 differences; this case checks the prompt path, so it avoids that step.
    batch, size, guidance, spec = 1, 64, 5.0, "ddim3"
    ctx = E2E_BASE["text_ctx"]
    toks = tokenizer.encode(prompt)
    t, m = tokenizer.padded_tokens_and_mask(toks, ctx)
    ut, um = tokenizer.padded_tokens_and_mask([], ctx)
    tokens = th.tensor([t] * batch + [ut] * batch)
    mask = th.tensor([m] * batch + [um] * batch, dtype=th.bool)
    source = read_image(GRASS, size)
    mask64 = th.ones_like(source)[:, :1]
    mask64[:, :, 20:] = 0
    full = 2 * batch
    model_kwargs = dict(tokens=tokens, mask=mask, inpaint_image=(source * mask64).repeat(full, 1, 1, 1),
                        inpaint_mask=mask64.repeat(full, 1, 1, 1))

    def denoised_fn(x_start):
        return x_start * (1 - model_kwargs["inpaint_mask"]) + model_kwargs["inpaint_image"] * model_kwargs["inpaint_mask"]

    start = th.randn(full, 3, size, size, generator=g)
    diffusion = SpacedDiffusion(space_timesteps(1000, spec), betas=get_named_beta_schedule(E2E_BASE["noise_schedule"], 1000))
    samples, noise = run_loop(diffusion, guided_model_fn(model, guidance), (full, 3, size, size), start, "ddpm",
                              model_kwargs, denoised_fn, batch)
    d = os.path.join(out, "e2e_base_inpaint_case")
    for k, v in dict(tokens=tokens, mask=mask, start=start[:batch], noise=noise, first_sample=samples[0],
                     out=samples[-1]).items():
        save(d, k, v.numpy())
    index.append(dict(name="e2e_base_inpaint_case", model="pipeline/e2e_base_inpaint/model.pt",
                      model_sha256=sha256(os.path.join(out, "e2e_base_inpaint", "model.pt")), prompt=prompt,
                      respacing=spec, sampler="ddpm", guidance=guidance, upsample_temp=1.0, batch=batch, size=size,
                      steps=diffusion.num_timesteps))
    print(f"e2e_base_inpaint_case: tokens {toks}, out scale {samples[-1].abs().max().item():.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "Tests", "Fixtures", "pipeline"))
    ap.add_argument("--only", help="regenerate just this case (models and tokenizer are always rewritten)")
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)
    th.manual_seed(0)
    tokenizer = make_tokenizer(out)
    base = make_e2e_model(out, "e2e_base_inpaint", E2E_BASE, tokenizer, 101)
    make_e2e_model(out, "e2e_upsample_inpaint", E2E_UP_INPAINT, tokenizer, 102)
    make_e2e_model(out, "e2e_upsample", E2E_UP, tokenizer, 103)
    cases = [
        ("upsample_fast27", lambda index: case_upsample(out, index)),
        ("inpaint_base", lambda index: case_inpaint_base(out, index)),
        ("inpaint_upsample_fast27", lambda index: case_inpaint_upsample(out, index)),
        ("e2e_base_inpaint_case", lambda index: case_e2e_base(out, index, base, tokenizer, "a corgi in a field")),
    ]
    index_path = os.path.join(out, "cases.json")
    old = {}
    if args.only and os.path.exists(index_path):
        with open(index_path) as f:
            old = {c["name"]: c for c in json.load(f)}
    index = []
    for name, run in cases:
        if args.only and name != args.only:
            if name in old:
                index.append(old[name])
            continue
        run(index)
    with open(index_path, "w") as f:
        json.dump(index, f, indent=1)
    print(f"wrote {len(index)} cases to {out}")


if __name__ == "__main__":
    main()
