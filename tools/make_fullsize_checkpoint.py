#!/usr/bin/env python3
"""Write a full-size GLIDE checkpoint with random weights, made by the genuine reference code.

Builds the reference model with glide_text2im.model_creation.create_model_and_diffusion (the released
configuration: model_and_diffusion_defaults(), or model_and_diffusion_defaults_upsampler() for the
upsamplers; use_fp16=False; inpaint=True for the inpainting models), perturbs EVERY tensor of its state
dict with seeded Gaussian noise (GLIDE zero-initialises several convolutions and leaves some embeddings
untouched, so unperturbed weights would hide mistakes), and torch.save's the state dict.

Usage (needs torch and glide_text2im importable):
  python tools/make_fullsize_checkpoint.py -o /tmp/glide-ckpts/base.pt                      # zip
  python tools/make_fullsize_checkpoint.py -o /tmp/glide-ckpts/base_legacy.pt --variant legacy
  python tools/make_fullsize_checkpoint.py -o /tmp/glide-ckpts/base_f16.pt --variant f16     # all floats -> f16
  python tools/make_fullsize_checkpoint.py -o /tmp/glide-ckpts/ --variant zip legacy f16    # several at once
  python tools/make_fullsize_checkpoint.py --model upsample -o /tmp/glide-ckpts/upsample.pt

With several variants, -o names a directory and the files are <model>.pt, <model>_legacy.pt, <model>_f16.pt.
Next to every checkpoint a <file>.manifest.json lists the tensors (name, dtype, shape) and the totals.
The reference `base` model has 385,030,726 parameters in 783 tensors (about 1.54 GB as f32).
"""
import argparse
import json
import os
import sys
import time

import torch
from glide_text2im.model_creation import (
    create_model_and_diffusion,
    model_and_diffusion_defaults,
    model_and_diffusion_defaults_upsampler,
)

EXPECTED = {"base": (385_030_726, 783)}


def build_options(model):
    if model in ("base", "base-inpaint"):
        options = model_and_diffusion_defaults()
    elif model in ("upsample", "upsample-inpaint"):
        options = model_and_diffusion_defaults_upsampler()
    else:
        raise SystemExit(f"unknown model {model!r}")
    options["use_fp16"] = False
    options["inpaint"] = model.endswith("-inpaint")
    return options


def perturbed_state_dict(model_name, seed, scale):
    options = build_options(model_name)
    t0 = time.time()
    model, _ = create_model_and_diffusion(**options)
    print(f"built {model_name} in {time.time() - t0:.1f}s", file=sys.stderr)
    sd = model.state_dict()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in sd.items():
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g, dtype=torch.float32).to(t.dtype) * scale)
            # (GLIDE's state dict has no integer tensors; they would be left as they are.)
    return sd, options


def manifest(sd):
    tensors = [{"name": k, "dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in sd.items()]
    params = sum(v.numel() for v in sd.values())
    nbytes = sum(v.numel() * v.element_size() for v in sd.values())
    return {"tensors": tensors, "tensor_count": len(tensors), "parameters": params, "bytes": nbytes}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="base", choices=["base", "upsample", "base-inpaint", "upsample-inpaint"])
    ap.add_argument("--variant", nargs="+", default=["zip"], choices=["zip", "legacy", "f16"])
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--scale", type=float, default=0.02, help="std of the Gaussian noise added to every tensor")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    sd, _ = perturbed_state_dict(args.model, args.seed, args.scale)
    m = manifest(sd)
    print(f"{args.model}: {m['parameters']:,} parameters in {m['tensor_count']} tensors, {m['bytes']:,} bytes",
          file=sys.stderr)
    if args.model in EXPECTED and (m["parameters"], m["tensor_count"]) != EXPECTED[args.model]:
        raise SystemExit(f"unexpected size for {args.model}: {(m['parameters'], m['tensor_count'])} != {EXPECTED[args.model]}")

    suffix = {"zip": "", "legacy": "_legacy", "f16": "_f16"}
    for variant in args.variant:
        if len(args.variant) > 1 or args.output.endswith("/") or os.path.isdir(args.output):
            os.makedirs(args.output, exist_ok=True)
            path = os.path.join(args.output, args.model + suffix[variant] + ".pt")
        else:
            os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
            path = args.output
        obj = sd
        if variant == "f16":
            obj = {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
        t0 = time.time()
        torch.save(obj, path, _use_new_zipfile_serialization=(variant != "legacy"))
        print(f"wrote {path} ({os.path.getsize(path):,} bytes) in {time.time() - t0:.1f}s", file=sys.stderr)
        with open(path + ".manifest.json", "w") as f:
            json.dump(manifest(obj), f)


if __name__ == "__main__":
    main()
