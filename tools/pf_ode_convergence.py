#!/usr/bin/env python3
"""dpm++2m and DDIM solve the same probability-flow ODE: on the full-size base model (any weights, e.g. the
random ones of tools/make_fullsize_checkpoint.py), from the same x_T (same seed), dpm++2m at 8, 16, 32, 64
steps approaches DDIM at many steps, the difference shrinking with the step count.

DDIM is first order, so DDIM at N steps is itself off by about C/N; the script also runs DDIM at N/2 and takes
the Richardson extrapolation 2 * DDIM(N) - DDIM(N/2) as a second-order reference. Prints RMS and max |.| of
the differences of the final samples (in [-1, 1]), and the CPU seconds of each run.

    swift build -c release --product glide
    nice /tmp/venv/bin/python tools/pf_ode_convergence.py --model /tmp/glide-ckpts/base-f32.glw \
        --vocab ../shared/vocab --threads 1 --conditional-only

Needs numpy only (reads the runs' --npy-out).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glide", default=os.path.join(HERE, "..", ".build", "release", "glide"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--vocab", default=None)
    ap.add_argument("--prompt", default="an oil painting of a corgi")
    ap.add_argument("--seed", default="5")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--dpm-steps", default="8,16,32,64")
    ap.add_argument("--conditional-only", action="store_true",
                    help="run the conditional half alone at every step (a guidance interval no step falls in): "
                         "one row instead of two, half the cost, still one ODE for both samplers")
    ap.add_argument("--ddim-steps", type=int, default=100, help="N: DDIM runs at N and N/2 (ddimN needs 1000/N integer)")
    args = ap.parse_args()

    def run(tmp, sampler, steps):
        out = os.path.join(tmp, f"{sampler}-{steps}.npy")
        cmd = [args.glide, "sample", args.prompt, "--model", args.model, "--sampler", sampler, "--steps", steps,
               "--seed", args.seed, "--threads", args.threads, "--quiet", "--npy-out", out,
               "-o", os.path.join(tmp, "out.png")]
        if args.vocab:
            cmd += ["--vocab", args.vocab]
        if args.conditional_only:
            cmd += ["--guidance-interval", "1e30,1e31"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        print(f"  {sampler} {steps}: {cpu:.0f} CPU s", file=sys.stderr, flush=True)
        return np.load(out).astype(np.float64)

    with tempfile.TemporaryDirectory() as tmp:
        n = args.ddim_steps
        ddim = run(tmp, "ddim", f"ddim{n}")
        ddim_half = run(tmp, "ddim", f"ddim{n // 2}")
        richardson = 2 * ddim - ddim_half
        dpm = {int(s): run(tmp, "dpm++2m", s) for s in args.dpm_steps.split(",")}

    def diff(a, b):
        d = a - b
        return f"{np.sqrt((d ** 2).mean()):.4f} | {np.abs(d).max():.4f}"

    print(f"| run | vs DDIM {n}: RMS \\| max | vs 2 DDIM {n} - DDIM {n // 2}: RMS \\| max | vs the next run (2x steps): RMS \\| max |")
    print("|---|---|---|---|")
    print(f"| DDIM {n // 2} | {diff(ddim_half, ddim)} | {diff(ddim_half, richardson)} | {diff(ddim_half, ddim)} |")
    counts = list(dpm)
    for i, s in enumerate(counts):
        following = diff(dpm[s], dpm[counts[i + 1]]) if i + 1 < len(counts) else "- | -"
        print(f"| dpm++2m {s} | {diff(dpm[s], ddim)} | {diff(dpm[s], richardson)} | {following} |")
    mode = "the conditional model alone" if args.conditional_only else "guidance 3 (the notebook recipe)"
    print(f"\n{args.model}, prompt {args.prompt!r}, seed {args.seed}, batch 1, {mode}, final samples in [-1, 1].")


if __name__ == "__main__":
    main()
