"""Activation-quantization error of the int8 GEMM and integer Winograd modes on GLIDE-like activations (numpy only).

Simulates a 3x3 convolution (im2col) whose input is GroupNorm(32) -> scale/shift -> SiLU of a smooth random
field with per-channel offsets, as in a ResBlock, and reports the relative RMS and max error against the f32
product on the same int8-dequantized weights, for the activation quantization modes of gemm_int8_vnni.c
(per column x K-block scales, |q| <= qmax, round to nearest even), next to the weight quantization error.

    /tmp/venv/bin/python tools/int8_activation_error.py [--channels 192] [--size 32] [--seed 0]
"""
import argparse
import numpy as np


def activations(rng, c, h, w):
    # smooth field: sum of a few random low-frequency waves plus noise, per-channel offset and gain
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    x = np.zeros((c, h, w), np.float32)
    for _ in range(4):
        fy, fx = rng.uniform(0, 0.5, size=(2, c, 1, 1))
        ph = rng.uniform(0, 2 * np.pi, size=(c, 1, 1))
        x += np.sin(fy * yy + fx * xx + ph).astype(np.float32)
    x += rng.normal(0, 0.5, size=x.shape).astype(np.float32)
    x = x * rng.lognormal(0, 0.7, size=(c, 1, 1)) + rng.normal(0, 2, size=(c, 1, 1))
    g = x.reshape(32, -1)
    g = (g - g.mean(1, keepdims=True)) / np.sqrt(g.var(1, keepdims=True) + 1e-5)
    x = g.reshape(c, h, w) * rng.normal(1, 0.3, size=(c, 1, 1)) + rng.normal(0, 0.3, size=(c, 1, 1))
    x = x * (1 + rng.normal(0, 0.5, size=(c, 1, 1))) + rng.normal(0, 0.5, size=(c, 1, 1))  # timestep scale/shift
    return (x / (1 + np.exp(-x))).astype(np.float32)


def im2col(x):
    c, h, w = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, ky:ky + h, kx:kx + w] for ky in range(3) for kx in range(3)], 1)
    return cols.reshape(c * 9, h * w)


def quantize_columns(x, qmax, block):
    q = np.empty_like(x)
    for k0 in range(0, x.shape[0], block):
        b = x[k0:k0 + block]
        s = np.abs(b).max(0, keepdims=True) / np.float32(qmax)
        inv = np.where(s > 0, 1 / np.where(s > 0, s, 1), 0).astype(np.float32)
        q[k0:k0 + block] = np.clip(np.rint(b * inv), -qmax, qmax) * s
    return q


BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
G2 = np.array([[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]], np.float64)   # 2 G
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)


def winograd_int(q, scales, x, qmax):
    """F(2x2, 3x3) as gemm_int8_avx2.c: exact 4U = (2G) g (2G)^T, V quantized per tile x 256 channels."""
    o, c = q.shape[0], x.shape[0]
    h, w = x.shape[1:]
    u4 = np.einsum("ai,ocij,bj->aboc", G2, q.reshape(o, c, 3, 3).astype(np.float64), G2)   # [4,4,O,C]
    p = np.pad(x.astype(np.float64), ((0, 0), (1, 1 + h % 2), (1, 1 + w % 2)))
    th, tw = (h + 1) // 2, (w + 1) // 2
    d = np.stack([np.stack([p[:, 2 * ty:2 * ty + 4, 2 * tx:2 * tx + 4] for tx in range(tw)], 1) for ty in range(th)], 1)
    v = np.einsum("ai,ctsij,bj->abcts", BT, d, BT).astype(np.float32).reshape(4, 4, c, th * tw)
    vq = np.empty_like(v, dtype=np.float64)
    for k0 in range(0, c, 256):
        b = v[:, :, k0:k0 + 256]
        s = np.abs(b).max(2, keepdims=True) / np.float32(qmax)
        inv = np.where(s > 0, 1 / np.where(s > 0, s, 1), 0).astype(np.float32)
        vq[:, :, k0:k0 + 256] = np.clip(np.rint(b * inv), -qmax, qmax) * s
    m = np.einsum("aboc,abct->abot", u4, vq) * (scales.reshape(1, 1, o, 1) / 4)
    y = np.einsum("ia,abot,jb->otij", AT, m, AT).reshape(o, th, tw, 2, 2).transpose(0, 1, 3, 2, 4)
    return y.reshape(o, 2 * th, 2 * tw)[:, :h, :w].reshape(o, h * w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=192)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    c = a.channels
    w = rng.normal(0, 1 / np.sqrt(9 * c), size=(c, 9 * c)).astype(np.float32)
    ws = np.abs(w).max(1, keepdims=True) / 127
    wq = np.clip(np.rint(w / ws), -127, 127) * ws
    img = activations(rng, c, a.size, a.size)
    x = im2col(img)
    ref = wq.astype(np.float64) @ x.astype(np.float64)
    exact = w.astype(np.float64) @ x.astype(np.float64)

    def report(name, y, against):
        d = y - against
        print(f"{name:44s} rel RMS {np.sqrt((d ** 2).mean() / (against ** 2).mean()):.2e}"
              f"   max/std {np.abs(d).max() / against.std():.2e}")

    print(f"3x3 conv {a.size}x{a.size}x{c}, K = {9 * c}; activations: GroupNorm -> scale/shift -> SiLU")
    report("weights int8 (per row), activations f32", ref, exact)
    for qmax, block in [(32767, 256), (127, 256), (127, 64), (127, 32)]:
        y = wq.astype(np.float64) @ quantize_columns(x, qmax, block).astype(np.float64)
        report(f"activations |q|<={qmax}, per column x {block} K", y, ref)
    qw = np.clip(np.rint(w / ws), -127, 127)
    report("integer Winograd, V |q|<=7300 per tile x 256 C", winograd_int(qw, ws, img, 7300), ref)


if __name__ == "__main__":
    main()
