#!/usr/bin/env python3
"""Whole-model PyTorch (CPU) baseline for GLIDE, the reference way: the counterpart of `glide bench step`.

Runs the genuine glide_text2im code on a torch.save checkpoint (full size, random perturbed weights, made by
tools/make_fullsize_checkpoint.py) exactly as notebooks/text2im.ipynb does: the model built with
create_model_and_diffusion, weights loaded with torch.load + load_state_dict, classifier-free guidance with
the batch doubled (prompt rows + empty-prompt rows), the text transformer recomputed inside every forward
(the reference does not cache it), each step under torch.no_grad as p_sample_loop runs it.

Measurements (--run, comma-separated; default "load,base-step"):
  load           build + torch.load + load_state_dict of every model the other items need; seconds and RSS
  base-step      seconds per guided base step (batch 2, 64x64, text transformer included): median over --steps
                 timed steps after --warmup untimed ones; the text transformer alone is timed too
  upsample-step  seconds per upsampler step (batch 1, 256x256, low_res 64x64, text included), same timing
  base-sample    a whole guided base sample: p_sample_loop over --base-respacing (default 100), batch 1
  text2im        base sample, then the notebook's upsampling: ddim_sample_loop over --upsample-respacing
                 (default fast27), start noise * 0.997, low_res quantized to 8 bits. Long (~10 min here).
Peak RSS is the process's ru_maxrss, so for a clean number per item run each long item in its own process
(and under /usr/bin/time -v for a second opinion), e.g.:

  /tmp/venv/bin/python tools/bench_torch_model.py --json                           # load + 3 base steps
  /tmp/venv/bin/python tools/bench_torch_model.py --run load,upsample-step --json
  /usr/bin/time -v /tmp/venv/bin/python tools/bench_torch_model.py --run base-sample --json
  /usr/bin/time -v /tmp/venv/bin/python tools/bench_torch_model.py --run text2im --json

Checkpoints (defaults): /tmp/glide-ckpts/base.pt and /tmp/glide-ckpts/upsample.pt; make them with
  /tmp/venv/bin/python tools/make_fullsize_checkpoint.py -o /tmp/glide-ckpts/base.pt
  /tmp/venv/bin/python tools/make_fullsize_checkpoint.py --model upsample -o /tmp/glide-ckpts/upsample.pt
"""
import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch as th
from guidance import guided_model_fn
from glide_text2im.model_creation import (
    create_model_and_diffusion,
    model_and_diffusion_defaults,
    model_and_diffusion_defaults_upsampler,
)

ITEMS = ["load", "base-step", "upsample-step", "base-sample", "text2im"]
PROMPT = "an oil painting of a corgi"
GUIDANCE = 3.0
UPSAMPLE_TEMP = 0.997


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def current_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def log(msg, quiet):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def load_model(kind, path, respacing, quiet):
    """The notebook's way: create_model_and_diffusion, eval(), load_state_dict(th.load(path))."""
    if not os.path.exists(path):
        raise SystemExit(f"bench_torch_model: {path} not found (make it with tools/make_fullsize_checkpoint.py"
                         f"{' --model upsample' if kind == 'upsample' else ''} -o {path})")
    options = model_and_diffusion_defaults() if kind == "base" else model_and_diffusion_defaults_upsampler()
    options["use_fp16"] = False
    options["timestep_respacing"] = respacing
    rss0 = current_rss_bytes()
    t0 = time.perf_counter()
    model, diffusion = create_model_and_diffusion(**options)
    model.eval()
    t1 = time.perf_counter()
    state = th.load(path, map_location="cpu")
    t2 = time.perf_counter()
    model.load_state_dict(state)
    t3 = time.perf_counter()
    del state
    result = dict(
        model=kind, checkpoint=path, checkpoint_bytes=os.path.getsize(path),
        parameters=sum(p.numel() for p in model.parameters()),
        create_seconds=t1 - t0, torch_load_seconds=t2 - t1, load_state_dict_seconds=t3 - t2,
        load_seconds=t3 - t1, total_seconds=t3 - t0,
        rss_before_bytes=rss0, rss_after_bytes=current_rss_bytes(), peak_rss_bytes=peak_rss_bytes(),
    )
    log(f"loaded {kind} from {path}: create {t1 - t0:.1f} s, torch.load {t2 - t1:.1f} s, "
        f"load_state_dict {t3 - t2:.1f} s; RSS {result['rss_after_bytes'] / 2**30:.2f} GiB "
        f"(peak {result['peak_rss_bytes'] / 2**30:.2f} GiB)", quiet)
    return model, diffusion, options, result


def text_kwargs(model, options, rows_prompt, rows_empty):
    tok = model.tokenizer
    tokens, mask = tok.padded_tokens_and_mask(tok.encode(PROMPT), options["text_ctx"])
    utokens, umask = tok.padded_tokens_and_mask([], options["text_ctx"])
    return dict(
        tokens=th.tensor([tokens] * rows_prompt + [utokens] * rows_empty),
        mask=th.tensor([mask] * rows_prompt + [umask] * rows_empty, dtype=th.bool),
    )


def time_steps(step, warmup, steps, label, quiet):
    times, cpu = [], []
    for i in range(warmup + steps):
        t0, c0 = time.perf_counter(), time.process_time()
        with th.no_grad():
            step(i)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        log(f"{label} {'warm-up' if i < warmup else 'step'} {i - warmup + 1 if i >= warmup else i + 1}: "
            f"{dt:.3f} s (CPU {dc:.3f} s)", quiet)
        if i >= warmup:
            times.append(dt)
            cpu.append(dc)
    return dict(warmup=warmup, steps=steps, median_seconds=statistics.median(times),
                min_seconds=min(times), max_seconds=max(times), step_seconds=times,
                cpu_median_seconds=statistics.median(cpu), step_cpu_seconds=cpu)


def bench_base_step(model, options, args):
    g = th.Generator().manual_seed(0)
    size = options["image_size"]
    kwargs = text_kwargs(model, options, 1, 1)
    x = th.randn(2, 3, size, size, generator=g)
    model_fn = guided_model_fn(model, GUIDANCE)
    ts_list = [999 - 10 * i for i in range(args.warmup + args.steps)]  # the 100-step schedule's timesteps

    def step(i):
        ts = th.tensor([ts_list[i]] * 2, dtype=th.long)
        return model_fn(x, ts, **kwargs)

    result = time_steps(step, args.warmup, args.steps, "base", args.quiet)
    result.update(batch=2, image_size=size, text_recomputed_each_step=True)
    # The text transformer alone (part of every reference step; our runtime computes it once per sample).
    text_times = []
    with th.no_grad():
        for i in range(1 + max(1, args.steps)):
            t0 = time.perf_counter()
            model.get_text_emb(kwargs["tokens"], kwargs["mask"])
            if i > 0:
                text_times.append(time.perf_counter() - t0)
    result["text_transformer_median_seconds"] = statistics.median(text_times)
    result["peak_rss_bytes"] = peak_rss_bytes()
    return result


def bench_upsample_step(model, options, args):
    g = th.Generator().manual_seed(1)
    size = options["image_size"]
    kwargs = text_kwargs(model, options, 1, 0)
    kwargs["low_res"] = th.rand(1, 3, 64, 64, generator=g) * 2 - 1
    x = th.randn(1, 3, size, size, generator=g)
    ts_list = [999 - 37 * i for i in range(args.warmup + args.steps)]

    def step(i):
        return model(x, th.tensor([ts_list[i]], dtype=th.long), **kwargs)

    result = time_steps(step, args.warmup, args.steps, "upsample", args.quiet)
    result.update(batch=1, image_size=size, low_res_size=64)
    result["peak_rss_bytes"] = peak_rss_bytes()
    return result


def run_base_sample(model, diffusion, options, args):
    th.manual_seed(args.seed)
    kwargs = text_kwargs(model, options, 1, 1)
    size = options["image_size"]
    model.del_cache()
    t0, c0 = time.perf_counter(), time.process_time()
    samples = diffusion.p_sample_loop(
        guided_model_fn(model, GUIDANCE), (2, 3, size, size), device=th.device("cpu"), clip_denoised=True,
        progress=not args.quiet and sys.stderr.isatty(), model_kwargs=kwargs, cond_fn=None,
    )[:1]
    seconds = time.perf_counter() - t0
    model.del_cache()
    steps = diffusion.num_timesteps
    log(f"base sample: {steps} steps in {seconds:.1f} s ({seconds / steps:.2f} s/step)", args.quiet)
    return samples, dict(respacing=args.base_respacing, steps=steps, seconds=seconds,
                         cpu_seconds=time.process_time() - c0,
                         seconds_per_step=seconds / steps, peak_rss_bytes=peak_rss_bytes())


def run_upsample(model_up, diffusion_up, options_up, samples, args):
    kwargs = text_kwargs(model_up, options_up, 1, 0)
    kwargs["low_res"] = ((samples + 1) * 127.5).round() / 127.5 - 1
    size = options_up["image_size"]
    shape = (1, 3, size, size)
    model_up.del_cache()
    t0, c0 = time.perf_counter(), time.process_time()
    up = diffusion_up.ddim_sample_loop(
        model_up, shape, noise=th.randn(shape) * UPSAMPLE_TEMP, device=th.device("cpu"), clip_denoised=True,
        progress=not args.quiet and sys.stderr.isatty(), model_kwargs=kwargs, cond_fn=None,
    )[:1]
    seconds = time.perf_counter() - t0
    model_up.del_cache()
    steps = diffusion_up.num_timesteps
    log(f"upsample: {steps} steps in {seconds:.1f} s ({seconds / steps:.2f} s/step)", args.quiet)
    return up, dict(respacing=args.upsample_respacing, steps=steps, seconds=seconds,
                    cpu_seconds=time.process_time() - c0,
                    seconds_per_step=seconds / steps, peak_rss_bytes=peak_rss_bytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="load,base-step", help=f"comma-separated items: {', '.join(ITEMS)}")
    ap.add_argument("--base", default="/tmp/glide-ckpts/base.pt", help="base checkpoint (torch.save)")
    ap.add_argument("--upsample", default="/tmp/glide-ckpts/upsample.pt", help="upsampler checkpoint")
    ap.add_argument("--steps", type=int, default=3, help="timed steps for base-step / upsample-step")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--base-respacing", default="100", help="base-sample / text2im respacing (notebook: 100)")
    ap.add_argument("--upsample-respacing", default="fast27", help="text2im upsampler respacing (notebook: fast27)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", help="text2im/base-sample: write the final image(s) as PNG with this path prefix")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args()

    items = [s.strip() for s in args.run.split(",") if s.strip()]
    for item in items:
        if item not in ITEMS:
            raise SystemExit(f"bench_torch_model: unknown --run item {item!r} (expected {', '.join(ITEMS)})")
    if args.steps < 1 or args.warmup < 0:
        raise SystemExit("bench_torch_model: --steps must be >= 1 and --warmup >= 0")
    th.set_num_threads(args.threads)

    report = dict(
        tool="bench_torch_model", torch=th.__version__, threads=th.get_num_threads(), machine=platform.machine(),
        cpu_count=os.cpu_count(), run=items, prompt=PROMPT, guidance=GUIDANCE,
        rss_start_bytes=current_rss_bytes(), results={},
    )
    needs_base = any(i in items for i in ("base-step", "base-sample", "text2im")) or ("load" in items and "upsample-step" not in items)
    needs_up = any(i in items for i in ("upsample-step", "text2im"))
    models = {}
    if needs_base:
        models["base"] = load_model("base", args.base, args.base_respacing, args.quiet)
    if needs_up:
        models["upsample"] = load_model("upsample", args.upsample, args.upsample_respacing, args.quiet)
    if "load" in items:
        report["results"]["load"] = {k: v[3] for k, v in models.items()}

    res = report["results"]
    if "base-step" in items:
        model, _, options, _ = models["base"]
        res["base-step"] = bench_base_step(model, options, args)
    if "upsample-step" in items:
        model, _, options, _ = models["upsample"]
        res["upsample-step"] = bench_upsample_step(model, options, args)
    if "base-sample" in items or "text2im" in items:
        model, diffusion, options, _ = models["base"]
        t0 = time.perf_counter()
        samples, base_result = run_base_sample(model, diffusion, options, args)
        if "base-sample" in items:
            res["base-sample"] = base_result
        if "text2im" in items:
            mu, du, ou, _ = models["upsample"]
            up, up_result = run_upsample(mu, du, ou, samples, args)
            res["text2im"] = dict(base=base_result, upsample=up_result, seconds=time.perf_counter() - t0,
                                  peak_rss_bytes=peak_rss_bytes())
            samples = up
        if args.save:
            from PIL import Image
            img = ((samples[0] + 1) * 127.5).round().clamp(0, 255).to(th.uint8).permute(1, 2, 0).numpy()
            path = f"{args.save}-{img.shape[0]}.png"
            Image.fromarray(img).save(path)
            log(f"wrote {path}", args.quiet)
    report["peak_rss_bytes"] = peak_rss_bytes()

    if args.json:
        print(json.dumps(report, indent=2))
        return
    gib = lambda b: f"{b / 2**30:.2f} GiB"
    print(f"PyTorch {report['torch']}, {report['threads']} threads")
    for kind, r in res.get("load", {}).items():
        print(f"load {kind}: create {r['create_seconds']:.1f} s, torch.load {r['torch_load_seconds']:.1f} s, "
              f"load_state_dict {r['load_state_dict_seconds']:.1f} s; RSS after {gib(r['rss_after_bytes'])}, "
              f"peak {gib(r['peak_rss_bytes'])}")
    if "base-step" in res:
        r = res["base-step"]
        print(f"base step (guided, batch 2, text each step): median {r['median_seconds']:.3f} s over {r['steps']} "
              f"(min {r['min_seconds']:.3f}, max {r['max_seconds']:.3f}; CPU median {r['cpu_median_seconds']:.3f}); text transformer alone "
              f"{r['text_transformer_median_seconds']:.3f} s")
    if "upsample-step" in res:
        r = res["upsample-step"]
        print(f"upsample step (batch 1, 256x256): median {r['median_seconds']:.3f} s over {r['steps']} "
              f"(min {r['min_seconds']:.3f}, max {r['max_seconds']:.3f}; CPU median {r['cpu_median_seconds']:.3f})")
    if "base-sample" in res:
        r = res["base-sample"]
        print(f"base sample ({r['respacing']}): {r['seconds']:.1f} s, {r['seconds_per_step']:.2f} s/step")
    if "text2im" in res:
        r = res["text2im"]
        print(f"text2im (base {r['base']['respacing']} + upsample {r['upsample']['respacing']}): {r['seconds']:.1f} s "
              f"(base {r['base']['seconds']:.1f} s, upsample {r['upsample']['seconds']:.1f} s)")
    print(f"peak RSS {gib(report['peak_rss_bytes'])}")


if __name__ == "__main__":
    main()
