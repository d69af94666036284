#!/usr/bin/env python3
"""Quality of the digits model per weight type: classifier accuracy, PSNR against f32, time per sample.

For each .glw file, runs our `glide sample` once on 100 prompts (10 per digit, the training prompt forms
cycled) given as token/mask arrays (`--input`), with the same seed, 50 steps and guidance 3, and reads the
samples with the classifier of tools/train_digit_classifier.py (Tests/Fixtures/digits/classifier.json).
The first file is the reference for PSNR (8-bit images, peak 255). Writes a Markdown table to stdout.

    swift build -c release
    /tmp/venv/bin/python tools/bench_digits.py --glide .build/release/glide \
        /tmp/digits/digits-f32.glw /tmp/digits/digits-bf16.glw Models/digits-f16.glw Models/digits-int8.glw

Needs the GPT-2 tokenizer of glide_text2im (for the token arrays) and numpy.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train_digit_classifier import DEFAULT_JSON, DigitClassifier  # noqa: E402

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = ["a handwritten digit {w}", "the number {d}", "a handwritten digit {d}",
             "the number {w}", "the digit {d}"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help=".glw files; the first is the PSNR reference")
    ap.add_argument("--glide", default=os.path.join(HERE, "..", ".build", "release", "glide"))
    ap.add_argument("--per-digit", type=int, default=10)
    ap.add_argument("--steps", default="50")
    ap.add_argument("--sampler", default="ddpm")
    ap.add_argument("--guidance", default="3.0")
    ap.add_argument("--seed", default="2024")
    ap.add_argument("--threads", default=None)
    ap.add_argument("--text-ctx", type=int, default=16)
    args = ap.parse_args()

    from glide_text2im.tokenizer.bpe import get_encoder

    tok = get_encoder()
    labels, rows_t, rows_m = [], [], []
    for d in range(10):
        for i in range(args.per_digit):
            text = TEMPLATES[i % len(TEMPLATES)].format(d=d, w=WORDS[d])
            t, m = tok.padded_tokens_and_mask(tok.encode(text), args.text_ctx)
            labels.append(d)
            rows_t.append(t)
            rows_m.append(m)
    n = len(labels)
    et, em = tok.padded_tokens_and_mask([], args.text_ctx)
    tokens = np.array(rows_t + [et] * n, dtype=np.int64)
    mask = np.array(rows_m + [em] * n, dtype=bool)
    classifier = DigitClassifier.from_json(json.load(open(DEFAULT_JSON)))

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "tokens.npy"), tokens)
        np.save(os.path.join(tmp, "mask.npy"), mask)
        for k, model in enumerate(args.models):
            out = os.path.join(tmp, f"out{k}.npy")
            cmd = [args.glide, "sample", "benchmark", "--model", model, "--batch", str(n), "--steps", args.steps,
                   "--sampler", args.sampler, "--guidance", args.guidance, "--seed", args.seed, "--quiet",
                   "--input", f"tokens={tmp}/tokens.npy", "--input", f"mask={tmp}/mask.npy",
                   "-o", os.path.join(tmp, f"out{k}.png"), "--npy-out", out, "--view-size", "0"]
            if args.threads:
                cmd += ["--threads", args.threads]
            t0 = time.time()
            subprocess.run(cmd, check=True)
            seconds = time.time() - t0
            x = np.load(out)
            acc = float((classifier.predict(x) == np.array(labels)).mean())
            img = np.clip(np.round((x + 1) * 127.5), 0, 255)
            results.append((model, acc, seconds, img))
            print(f"{model}: accuracy {acc:.3f}, {seconds:.1f} s", file=sys.stderr)

    ref = results[0][3]
    print(f"| file | size (MB) | accuracy ({n} samples) | PSNR vs {os.path.basename(args.models[0])} (dB) | "
          f"s per sample (batch {n}) |")
    print("|---|---|---|---|---|")
    for model, acc, seconds, img in results:
        mse = float(((img - ref) ** 2).mean())
        psnr = "identical" if mse == 0 else f"{10 * np.log10(255.0 ** 2 / mse):.1f}"
        size = os.path.getsize(model) / 1e6
        print(f"| {os.path.basename(model)} | {size:.1f} | {acc:.2f} | {psnr} | {seconds / n:.3f} |")
    print(f"\n{args.steps} {args.sampler} steps, guidance {args.guidance}, seed {args.seed}; "
          f"time includes loading (one `glide sample --batch {n}` run per file).")


if __name__ == "__main__":
    main()
