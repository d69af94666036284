#!/usr/bin/env python3
"""Run notebooks/clip_guided.ipynb's recipe with the genuine reference on full-size checkpoints: time it,
and optionally dump its noise and samples for `glide sample --clip-guidance ... --start-noise --step-noise`.

The recipe (as the notebook, CPU, f32): base model with timestep_respacing "100", p_sample_loop with
cond_fn = clip_model.cond_fn([prompt], guidance_scale=3.0), batch 1, no classifier-free guidance; then the
upsampler with "fast27", ddim_sample_loop, start noise x 0.997, low_res quantized to 8-bit levels.

Checkpoints (random weights made by the reference, every parameter perturbed):
    tools/make_fullsize_checkpoint.py -o /tmp/glide-ckpts/base.pt
    tools/make_fullsize_checkpoint.py --model upsample -o /tmp/glide-ckpts/upsample.pt
    tools/make_clip_goldens.py --skip-tiny --fullsize /tmp/glide-ckpts     # clip_image_enc.pt, clip_text_enc.pt

Usage:
    /tmp/venv/bin/python tools/bench_torch_clip_guided.py [--ckpts /tmp/glide-ckpts] [--threads 1]
        [--base-respacing 100] [--skip-upsampler] [--dump DIR] [--seed 0]
--dump writes DIR/start.npy [1, 3, 64, 64], DIR/noise.npy [steps, 1, 3, 64, 64] (every randn_like the base
sampler drew, in order), DIR/sample64.npy, and with the upsampler DIR/up_start.npy, DIR/sample256.npy.
Prints wall and process CPU seconds per stage and the peak RSS (ru_maxrss).
"""
import argparse
import os
import resource
import time

import numpy as np
import torch as th
from guidance import recorded_noise

from glide_text2im.clip.model_creation import create_clip_model
from glide_text2im.model_creation import (
    create_model_and_diffusion,
    model_and_diffusion_defaults,
    model_and_diffusion_defaults_upsampler,
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpts", default="/tmp/glide-ckpts")
    ap.add_argument("--prompt", default="an oil painting of a corgi")
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--base-respacing", default="100")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--skip-upsampler", action="store_true")
    ap.add_argument("--dump")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        th.set_num_threads(args.threads)
    cpu = th.device("cpu")
    th.manual_seed(args.seed)

    options = model_and_diffusion_defaults()
    options["use_fp16"] = False
    options["timestep_respacing"] = args.base_respacing
    model, diffusion = create_model_and_diffusion(**options)
    model.eval()
    model.load_state_dict(th.load(os.path.join(args.ckpts, "base.pt"), map_location="cpu"))
    clip_model = create_clip_model(device=cpu)
    clip_model.image_encoder.load_state_dict(th.load(os.path.join(args.ckpts, "clip_image_enc.pt")))
    clip_model.text_encoder.load_state_dict(th.load(os.path.join(args.ckpts, "clip_text_enc.pt")))

    tokens = model.tokenizer.encode(args.prompt)
    tokens, mask = model.tokenizer.padded_tokens_and_mask(tokens, options["text_ctx"])
    model_kwargs = dict(tokens=th.tensor([tokens]), mask=th.tensor([mask], dtype=th.bool))
    cond_fn = clip_model.cond_fn([args.prompt], args.guidance)

    shape = (1, 3, options["image_size"], options["image_size"])
    start = th.randn(*shape)
    drawn = []
    t0, c0 = time.perf_counter(), time.process_time()
    with recorded_noise(drawn):
        samples = diffusion.p_sample_loop(model, shape, noise=start, device=cpu, clip_denoised=True,
                                          model_kwargs=model_kwargs, cond_fn=cond_fn)
    wall, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    steps = diffusion.num_timesteps
    print(f"base + CLIP guidance: {steps} steps, {wall:.1f} s wall ({wall / steps:.2f} s/step), "
          f"{cpu_s:.1f} s process CPU")
    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
        np.save(os.path.join(args.dump, "start.npy"), start.numpy())
        np.save(os.path.join(args.dump, "noise.npy"), th.stack(drawn).numpy())
        np.save(os.path.join(args.dump, "sample64.npy"), samples.detach().numpy())

    if not args.skip_upsampler:
        options_up = model_and_diffusion_defaults_upsampler()
        options_up["use_fp16"] = False
        options_up["timestep_respacing"] = "fast27"
        model_up, diffusion_up = create_model_and_diffusion(**options_up)
        model_up.eval()
        model_up.load_state_dict(th.load(os.path.join(args.ckpts, "upsample.pt"), map_location="cpu"))
        tokens = model_up.tokenizer.encode(args.prompt)
        tokens, mask = model_up.tokenizer.padded_tokens_and_mask(tokens, options_up["text_ctx"])
        kwargs = dict(low_res=((samples + 1) * 127.5).round() / 127.5 - 1, tokens=th.tensor([tokens]),
                      mask=th.tensor([mask], dtype=th.bool))
        up_shape = (1, 3, options_up["image_size"], options_up["image_size"])
        up_start = th.randn(up_shape) * 0.997
        t0, c0 = time.perf_counter(), time.process_time()
        with th.no_grad():
            up = diffusion_up.ddim_sample_loop(model_up, up_shape, noise=up_start, device=cpu, clip_denoised=True,
                                               model_kwargs=kwargs, cond_fn=None)
        wall, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        print(f"upsampler fast27 DDIM: {wall:.1f} s wall, {cpu_s:.1f} s process CPU")
        if args.dump:
            np.save(os.path.join(args.dump, "up_start.npy"), up_start.numpy())
            np.save(os.path.join(args.dump, "sample256.npy"), up.numpy())
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
