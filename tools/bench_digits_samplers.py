#!/usr/bin/env python3
"""Quality per sampler and step count on the shipped digits model: prompted-digit accuracy and a distance to
the notebook recipe (100 guided DDPM steps), against the distance between two independent 100-step DDPM sets.

For every setting, one `glide sample` process draws N samples (N/10 per digit, the training prompt forms
cycled, guidance 3, given as token/mask arrays). The reference set R is DDPM 100 with seed A; every other
setting, including a second DDPM 100 set (the noise floor), uses seed B, so no setting shares R's noise.
Measures:
- accuracy: the classifier of tools/train_digit_classifier.py reads the prompted digit;
- KID: kernel inception distance (unbiased MMD^2, cubic polynomial kernel (x.y/d + 1)^3) between the set and
  R on the classifier's features: its 64 ink features (2x2-pooled 16x16 image, the input of its only linear
  layer) scaled to [0, 1], before its standardisation (which divides nearly constant border pixels by tiny
  scales, so a few speckled pixels would dominate the cubic kernel), x 1000, with a bootstrap standard
  error (resampling both sets, 100 draws);
- seconds of CPU (user + system, the child process, load included) per sample, and wall seconds per sample.
A setting "matches" the recipe when its KID <= floor KID + 2 * floor SE and its accuracy is within 2 points
of R's. Writes one JSON line per setting to --out as it goes (so a stopped run keeps its results) and a
Markdown table to stdout at the end.

    swift build -c release --product glide
    nice /tmp/venv/bin/python tools/bench_digits_samplers.py --per-digit 20 --threads 1 --out /tmp/samplers.jsonl

Needs numpy and the GPT-2 tokenizer of glide_text2im (for the token arrays).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train_digit_classifier import DEFAULT_JSON, DigitClassifier, to_8x8  # noqa: E402

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = ["a handwritten digit {w}", "the number {d}", "a handwritten digit {d}",
             "the number {w}", "the digit {d}"]
INTERVAL = "0.28,2.9"   # Kynkaanniemi et al. 2024, EDM2-XXL

# (label, sampler, steps, extra args, seed key)
SETTINGS = [("ddpm 100 (R)", "ddpm", "100", [], "A"), ("ddpm 100 (floor)", "ddpm", "100", [], "B")]
for interval in [False, True]:
    for sampler in ["dpm++2m", "dpm++2m-sde"]:
        for s in ["10", "15", "20", "25"]:
            extra = ["--guidance-interval", INTERVAL] if interval else []
            SETTINGS.append((f"{sampler} {s}" + (f" gi {INTERVAL}" if interval else ""), sampler, s, extra, "B"))
SETTINGS += [(f"ddpm {s}", "ddpm", s, [], "B") for s in ["50", "25"]]
SETTINGS += [("ddim25", "ddim", "ddim25", [], "B"), ("ddim100 (PF-ODE limit)", "ddim", "ddim100", [], "B")]
SETTINGS += [(f"dpm++2m {s} logsnr", "dpm++2m", s, ["--solver-spacing", "logsnr"], "B") for s in ["10", "20"]]
# Below the step counts, and the SDE variant with log-SNR spacing (run with --only).
EXTRA = [(f"dpm++2m-sde {s}", "dpm++2m-sde", s, [], "B") for s in ["5", "8"]]
EXTRA += [(f"dpm++2m-sde {s} logsnr", "dpm++2m-sde", s, ["--solver-spacing", "logsnr"], "B") for s in ["5", "10"]]

def kid(fx, fy):
    d = fx.shape[1]
    kxx = (fx @ fx.T / d + 1) ** 3
    kyy = (fy @ fy.T / d + 1) ** 3
    kxy = (fx @ fy.T / d + 1) ** 3
    m, n = len(fx), len(fy)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean()) * 1000


def kid_with_se(fx, fy, rng, draws=100):
    value = kid(fx, fy)
    boots = []
    for _ in range(draws):
        i = rng.integers(0, len(fx), len(fx))
        j = rng.integers(0, len(fy), len(fy))
        # Duplicated rows would bias the unbiased estimator's diagonal removal; jitter-free subsample instead.
        i = np.unique(i)
        j = np.unique(j)
        boots.append(kid(fx[i], fy[j]))
    return value, float(np.std(boots))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glide", default=os.path.join(HERE, "..", ".build", "release", "glide"))
    ap.add_argument("--model", default=os.path.join(HERE, "..", "Models", "digits-int8.glw"))
    ap.add_argument("--per-digit", type=int, default=50)
    ap.add_argument("--threads", default="1")
    ap.add_argument("--seed-a", default="1001")
    ap.add_argument("--seed-b", default="2002")
    ap.add_argument("--out", default="/tmp/bench_digits_samplers.jsonl")
    ap.add_argument("--only", default=None,
                    help="comma-separated setting labels to run (default all but the extra ones) after R")
    ap.add_argument("--text-ctx", type=int, default=16)
    ap.add_argument("--floor-limit", type=float, default=float("nan"),
                    help="floor KID + 2 SE from an earlier run, for --only runs without the floor set")
    args = ap.parse_args()

    from glide_text2im.tokenizer.bpe import get_encoder

    tok = get_encoder()
    labels, rows_t, rows_m = [], [], []
    for i in range(args.per_digit):
        for d in range(10):
            text = TEMPLATES[i % len(TEMPLATES)].format(d=d, w=WORDS[d])
            t, m = tok.padded_tokens_and_mask(tok.encode(text), args.text_ctx)
            labels.append(d)
            rows_t.append(t)
            rows_m.append(m)
    n = len(labels)
    labels = np.array(labels)
    et, em = tok.padded_tokens_and_mask([], args.text_ctx)
    classifier = DigitClassifier.from_json(json.load(open(DEFAULT_JSON)))

    def features(x):
        return to_8x8(x) / 16.0

    settings = SETTINGS
    if args.only:
        wanted = set(args.only.split(","))
        settings = [s for s in SETTINGS + EXTRA if s[0] in wanted or s[0] == "ddpm 100 (R)"]
    results = {}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, open(args.out, "a") as log:
        np.save(os.path.join(tmp, "tokens.npy"), np.array(rows_t + [et] * n, dtype=np.int64))
        np.save(os.path.join(tmp, "mask.npy"), np.array(rows_m + [em] * n, dtype=bool))
        for label, sampler, steps, extra, seed_key in settings:
            out = os.path.join(tmp, "out.npy")
            cmd = [args.glide, "sample", "benchmark", "--model", args.model, "--batch", str(n), "--steps", steps,
                   "--sampler", sampler, "--guidance", "3", "--seed", args.seed_a if seed_key == "A" else args.seed_b,
                   "--quiet", "--threads", args.threads, "--input", f"tokens={tmp}/tokens.npy",
                   "--input", f"mask={tmp}/mask.npy", "-o", os.path.join(tmp, "out.png"), "--npy-out", out,
                   "--view-size", "0"] + extra
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.time()
            subprocess.run(cmd, check=True)
            wall = time.time() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            x = np.load(out)
            acc = float((classifier.predict(x) == labels).mean())
            f = features(x)
            entry = dict(label=label, sampler=sampler, steps=steps, extra=extra, n=n, accuracy=acc,
                         cpu_per_sample=cpu / n, wall_per_sample=wall / n, threads=args.threads,
                         time=time.strftime("%H:%M:%S", time.gmtime()))
            if "R" in results:
                entry["kid"], entry["kid_se"] = kid_with_se(f, results["R"]["features"], rng)
            results["R" if label == "ddpm 100 (R)" else label] = dict(entry, features=f)
            log.write(json.dumps(entry) + "\n")
            log.flush()
            print(f"{label}: acc {acc:.3f} kid {entry.get('kid', float('nan')):.3f} "
                  f"cpu/sample {cpu / n:.3f} s ({entry['time']} UTC)", file=sys.stderr)

    ref = results["R"]
    floor = results.get("ddpm 100 (floor)")
    limit = floor["kid"] + 2 * floor["kid_se"] if floor else args.floor_limit
    print(f"| setting | accuracy ({n}) | KID x1000 vs R (± SE) | matches R | CPU s per sample |")
    print("|---|---|---|---|---|")
    for label, entry in results.items():
        k = entry.get("kid")
        kid_text = "-" if k is None else f"{k:.3f} ± {entry['kid_se']:.3f}"
        match = "-" if k is None else ("yes" if k <= limit and abs(entry["accuracy"] - ref["accuracy"]) <= 0.02 else "no")
        print(f"| {entry['label']} | {entry['accuracy'] * 100:.1f} % | {kid_text} | {match} | "
              f"{entry['cpu_per_sample']:.3f} |")
    print(f"\nMatch: KID <= floor + 2 SE = {limit:.3f} and accuracy within 2 points of R's "
          f"{ref['accuracy'] * 100:.1f} %.")


if __name__ == "__main__":
    main()
