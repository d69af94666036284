#!/usr/bin/env python3
"""Time PyTorch (CPU) on the same shapes as `glide bench kernels` and print the same JSON / table.

Usage:
    /tmp/venv/bin/python tools/bench_torch.py [--json] [--threads 2] [--dtypes f32,bf16] [--skip-upsampler]
    /tmp/venv/bin/python tools/bench_torch.py --compare ours.json [--torch-json torch.json]
        (ours.json from `glide bench kernels --json`; prints a side-by-side Markdown table with ratios to
         PyTorch f32; without --torch-json PyTorch is timed now)

FLOPs = 2*M*N*K (convolution: 2*N*C_out*H_out*W_out*C_in*k*k). Timing: one warm-up run, then the best of
repeated runs within --seconds. bf16 runs the op with bf16 weights AND bf16 activations (PyTorch's CPU
bf16 path), only if this PyTorch supports it on CPU.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def cases(skip_upsampler):
    out = []
    for batch in (1, 2):
        for res, ch in ((64, 192), (32, 384), (16, 576), (8, 768)):
            out.append(dict(op="conv2d", label=f"conv3x3 {res}x{res}x{ch} b{batch}",
                            shape=dict(N=batch, C_in=ch, H=res, W=res, C_out=ch, kernel=3, stride=1)))
    if not skip_upsampler:
        out.append(dict(op="conv2d", label="conv3x3 256x256x192 b1 (upsampler)",
                        shape=dict(N=1, C_in=192, H=256, W=256, C_out=192, kernel=3, stride=1)))
    for batch in (1, 2):
        for res, ch in ((32, 384), (16, 576), (8, 768)):
            out.append(dict(op="matmul", label=f"attn qkv {res}x{res}x{ch} b{batch}", kind="nchw",
                            shape=dict(M=3 * ch, N=res * res * batch, K=ch)))
        t = 128 * batch
        out.append(dict(op="matmul", label=f"linear qkv 512->1536 T{t}", kind="linear", shape=dict(M=1536, N=t, K=512)))
        out.append(dict(op="matmul", label=f"linear fc 512->2048 T{t}", kind="linear", shape=dict(M=2048, N=t, K=512)))
        out.append(dict(op="matmul", label=f"linear proj 2048->512 T{t}", kind="linear", shape=dict(M=512, N=t, K=2048)))
    return out


def make_fn(case, dtype):
    s = case["shape"]
    g = torch.Generator().manual_seed(0)
    if case["op"] == "conv2d":
        x = torch.rand(s["N"], s["C_in"], s["H"], s["W"], generator=g, dtype=torch.float32)
        w = torch.rand(s["C_out"], s["C_in"], s["kernel"], s["kernel"], generator=g) * 0.05
        b = torch.rand(s["C_out"], generator=g)
        x, w, b = x.to(dtype), w.to(dtype), b.to(dtype)
        flops = 2.0 * s["N"] * s["C_out"] * s["H"] * s["W"] * s["C_in"] * s["kernel"] ** 2
        return (lambda: F.conv2d(x, w, b, stride=s["stride"], padding=1)), flops
    m, n, k = s["M"], s["N"], s["K"]
    w = (torch.rand(m, k, generator=g) * 0.05).to(dtype)
    b = torch.rand(m, generator=g).to(dtype)
    flops = 2.0 * m * n * k
    if case["kind"] == "linear":
        x = torch.rand(n, k, generator=g).to(dtype)
        return (lambda: F.linear(x, w, b)), flops
    # UNet attention qkv: 1x1 conv1d over [1, C, T]
    x = torch.rand(1, k, n, generator=g).to(dtype)
    w3 = w[:, :, None]
    return (lambda: F.conv1d(x, w3, b)), flops


CLOCK = time.perf_counter


def time_fn(fn, seconds):
    with torch.inference_mode():
        fn()
        best = float("inf")
        start = CLOCK()
        runs = 0
        while CLOCK() - start < seconds or runs < 2:
            t0 = CLOCK()
            fn()
            best = min(best, CLOCK() - t0)
            runs += 1
    return best


def run_all(args):
    dtypes = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
    records = []
    for case in cases(args.skip_upsampler):
        if args.filter and args.filter not in case["label"]:
            continue
        for name in args.dtypes.split(","):
            fn, flops = make_fn(case, dtypes[name.strip()])
            secs = time_fn(fn, args.seconds)
            records.append(dict(op=case["op"], dtype=name.strip(), label=case["label"], shape=case["shape"],
                                gflops=round(flops / secs / 1e9, 2), seconds=round(secs, 6)))
    return records


def compare(args):
    with open(args.compare) as f:
        ours = json.load(f)
    if args.torch_json:
        with open(args.torch_json) as f:
            theirs = json.load(f)
    else:
        theirs = run_all(args)
    peak = next((r["gflops"] for r in ours if r["op"] == "fma_peak"), None)
    torch_f32 = {r["label"]: r["gflops"] for r in theirs if r["dtype"] == "f32"}
    torch_bf16 = {r["label"]: r["gflops"] for r in theirs if r["dtype"] == "bf16"}
    by_label = {}
    for r in ours:
        if r["op"].endswith("_peak"):   # fma_peak, fma512_peak, bf16_peak
            continue
        by_label.setdefault(r["label"], {})[r["dtype"]] = r["gflops"]
    if peak:
        print(f"FMA peak measured in our run: {peak:.1f} GFLOP/s (all threads)\n")
    cols = ["f32", "f16", "bf16", "int8"]
    print("| shape | " + " | ".join(f"ours {c}" for c in cols) + " | torch f32 | " +
          ("torch bf16 | " if torch_bf16 else "") + " | ".join(f"{c}/torch" for c in cols) + " | ours f32 % peak |")
    print("|---" * (2 + 2 * len(cols) + (2 if torch_bf16 else 1)) + "|")
    for label, d in by_label.items():
        t = torch_f32.get(label)
        cells = [f"{d[c]:.1f}" if c in d else "-" for c in cols]
        ratios = [f"{d[c] / t:.2f}x" if (c in d and t) else "-" for c in cols]
        tb = [f"{torch_bf16[label]:.1f}" if label in torch_bf16 else "-"] if torch_bf16 else []
        pk = f"{100 * d['f32'] / peak:.0f}%" if (peak and "f32" in d) else "-"
        print(f"| {label} | " + " | ".join(cells) + f" | {t if t is not None else '-'} | " + "".join(x + " | " for x in tb)
              + " | ".join(ratios) + f" | {pk} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtypes", default="f32", help="f32,bf16,f16 (bf16 convolution is ~100x slower than f32 on CPUs without native bf16)")
    ap.add_argument("--filter", default=None)
    ap.add_argument("--seconds", type=float, default=0.3)
    ap.add_argument("--skip-upsampler", action="store_true")
    ap.add_argument("--compare", metavar="OURS_JSON", help="print a table comparing with `glide bench kernels --json` output")
    ap.add_argument("--torch-json", metavar="TORCH_JSON", help="with --compare: use these PyTorch results instead of timing")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the calling thread's CPU time (requires --threads 1); insensitive to other load")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.cpu_time:
        if args.threads != 1:
            ap.error("--cpu-time needs --threads 1")
        global CLOCK
        CLOCK = time.thread_time
    if args.compare:
        compare(args)
        return
    dtypes = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
    records = []
    if not args.json:
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for case in cases(args.skip_upsampler):
        if args.filter and args.filter not in case["label"]:
            continue
        for name in args.dtypes.split(","):
            name = name.strip()
            try:
                fn, flops = make_fn(case, dtypes[name])
                secs = time_fn(fn, args.seconds)
            except RuntimeError as e:  # dtype not supported on this CPU build
                if not args.json:
                    print(f"{case['op']:8} {name:6} {case['label']:35} unsupported: {str(e).splitlines()[0]}")
                continue
            gflops = flops / secs / 1e9
            rec = dict(op=case["op"], dtype=name, label=case["label"], shape=case["shape"],
                       gflops=round(gflops, 2), seconds=round(secs, 6), impl="torch " + torch.__version__)
            records.append(rec)
            if not args.json:
                print(f"{case['op']:8} {name:6} {case['label']:35} {gflops:8.1f}", flush=True)
    if args.json:
        print(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
