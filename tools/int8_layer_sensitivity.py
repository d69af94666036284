"""Which layers make the int8 file's error: a PyTorch simulation of glide's int8 arithmetic on a full-size model.

Runs the genuine glide_text2im model on the full-size input of tools/make_model_goldens.py --fullsize (DIR/x.npy
etc.) with the checkpoint's matrices replaced by their int8 per-row round trip (glw-policy-1: vectors and tiny
tensors f32, embeddings f16, every other matrix int8 with scale max|row|/127) and, where asked, the inputs of the
layers that glide runs on the direct int8 GEMM (linear layers, 1x1 convolutions, qkv/encoder_kv/proj_out, 3x3
convolutions on 8x8 planes; the other 3x3 convolutions take the integer Winograd, whose 13-bit activations are
left exact here) quantized as gemm_int8_vnni.c does: per output column and 256-long K block, |q| <= qmax, round
half to even. Prints max|y - y_f32| / std(y_f32) and RMS(y - y_f32) / RMS(y_f32) per configuration, where y_f32
is the unquantized forward.

Configurations (--mode):
  groups     for each layer group G: all int8 except G (kept f16), and only G int8 (the rest exact)
  act8       16-bit vs 8-bit activations, all GEMM-path layers and per group (weights int8 everywhere)
  config     one configuration: --keep REGEX (matrices kept f16), --act8 REGEX (layers with 8-bit activations)

    /tmp/venv/bin/python tools/int8_layer_sensitivity.py --ckpt /tmp/glide-ckpts/base.pt --inputs /tmp/fs-base --mode groups
"""
import argparse
import json
import os
import re

import numpy as np
import torch as th
import torch.nn.functional as F

import glide_text2im.model_creation as mc


class SmallVocab:
    def __init__(self, n):
        self.n_vocab = n


def create(options):
    saved = mc.get_encoder
    mc.get_encoder = lambda: SmallVocab(options["n_vocab"])
    try:
        keys = mc.create_model.__code__.co_varnames[: mc.create_model.__code__.co_argcount]
        model = mc.create_model(**{k: options[k] for k in keys})
    finally:
        mc.get_encoder = saved
    return model.eval()


EMBEDDINGS = ("token_embedding.weight", "positional_embedding", "padding_embedding")

# Layer groups by role (regexes over parameter names without the trailing ".weight").
GROUPS = {
    "text.attn": r"^transformer\.resblocks\.\d+\.attn\.",
    "text.mlp": r"^transformer\.resblocks\.\d+\.mlp\.",
    "transformer_proj": r"^transformer_proj$",
    "time_embed": r"^time_embed\.",
    "emb_layers": r"\.emb_layers\.",
    "in_layers": r"\.in_layers\.",
    "out_layers": r"\.out_layers\.",
    "skip": r"\.skip_connection$",
    "attn.qkv": r"\.qkv$",
    "attn.encoder_kv": r"\.encoder_kv$",
    "attn.proj_out": r"\.proj_out$",
}


def int8_roundtrip(w):
    w2 = w.reshape(w.shape[0], -1).double()
    s = w2.abs().amax(1, keepdim=True) / 127
    q = th.where(s > 0, th.round(w2 / th.where(s > 0, s, 1)), th.zeros_like(w2)).clamp(-127, 127)
    return (q * s).float().reshape(w.shape)


def quantized_state(state, keep):
    """glw-policy-1 int8 round trip; names matching `keep` (regex or None) stay f16."""
    out = {}
    for name, t in state.items():
        if not t.is_floating_point() or t.dim() <= 1 or t.numel() < 16384:
            out[name] = t
        elif name.endswith(EMBEDDINGS):
            out[name] = t.half().float()
        elif keep is not None and re.search(keep, name[: -len(".weight")] if name.endswith(".weight") else name):
            out[name] = t.half().float()
        else:
            out[name] = int8_roundtrip(t)
    return out


def quantize_columns(x, qmax, block=256):
    """x [K, N]: per column and K block, |q| <= qmax, round half even (as i8_quantize_panel)."""
    out = th.empty_like(x)
    for k0 in range(0, x.shape[0], block):
        b = x[k0:k0 + block]
        s = b.abs().amax(0, keepdim=True) / qmax
        inv = th.where(s > 0, 1 / th.where(s > 0, s, th.ones_like(s)), th.zeros_like(s))
        out[k0:k0 + block] = th.round(b * inv).clamp(-qmax, qmax) * s
    return out


def act_quant_forward(mod, qmax):
    """Replace mod.forward by one whose GEMM input is quantized like glide's direct int8 GEMM."""
    if isinstance(mod, th.nn.Linear):
        def f(x):
            shp = x.shape
            x2 = x.reshape(-1, shp[-1]).t()
            return F.linear(quantize_columns(x2, qmax).t().reshape(shp), mod.weight, mod.bias)
    elif isinstance(mod, th.nn.Conv1d):
        assert mod.kernel_size == (1,)
        def f(x):
            n, c, t = x.shape
            xq = quantize_columns(x.permute(1, 0, 2).reshape(c, n * t), qmax).reshape(c, n, t).permute(1, 0, 2)
            return F.conv1d(xq, mod.weight, mod.bias)
    elif isinstance(mod, th.nn.Conv2d):
        k = mod.kernel_size[0]
        def f(x):
            n, c, h, w = x.shape
            if k == 3 and h * w > 64:      # integer Winograd path: activations effectively exact
                return mod._conv_forward(x, mod.weight, mod.bias)
            cols = F.unfold(x, k, padding=mod.padding[0], stride=mod.stride[0])    # [n, c*k*k, L]
            kk, L = cols.shape[1], cols.shape[2]
            cq = quantize_columns(cols.permute(1, 0, 2).reshape(kk, n * L), qmax).reshape(kk, n, L).permute(1, 0, 2)
            y = th.einsum("ok,nkl->nol", mod.weight.reshape(mod.weight.shape[0], -1), cq) + mod.bias.view(1, -1, 1)
            oh = (h + 2 * mod.padding[0] - k) // mod.stride[0] + 1
            return y.reshape(n, -1, oh, L // oh)
    else:
        return None
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="/tmp/glide-ckpts/base.pt")
    ap.add_argument("--inputs", default="/tmp/fs-base")
    ap.add_argument("--mode", default="groups", choices=["groups", "act8", "config"])
    ap.add_argument("--keep", default=None)
    ap.add_argument("--act8", default=None)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    th.set_num_threads(a.threads)
    with open(os.path.join(a.inputs, "options.json")) as f:
        options = json.load(f)
    model = create(options)
    state = th.load(a.ckpt, map_location="cpu")
    names = [n for n in ["x", "timesteps", "tokens", "mask", "low_res"] if os.path.exists(os.path.join(a.inputs, n + ".npy"))]
    inputs = {n: th.from_numpy(np.load(os.path.join(a.inputs, n + ".npy"))) for n in names}
    ref = th.from_numpy(np.load(os.path.join(a.inputs, "out.npy"))).double()

    def run(keep=None, act8=None, quantize=True):
        model.load_state_dict(quantized_state(state, keep) if quantize else state)
        patched = []
        if act8 is not None:
            for name, mod in model.named_modules():
                if re.search(act8, name):
                    w = getattr(mod, "weight", None)
                    f = act_quant_forward(mod, 127) if w is not None and w.dim() >= 2 and w.numel() >= 16384 else None
                    if f is not None:
                        mod.forward = f
                        patched.append(mod)
        with th.no_grad():
            kw = {k: v for k, v in inputs.items() if k not in ("x", "timesteps")}
            y = model(inputs["x"], inputs["timesteps"], **kw).double()
        for mod in patched:
            del mod.forward
        d = y - ref
        return (d.abs().max() / ref.std()).item(), (d.pow(2).mean() / ref.pow(2).mean()).sqrt().item()

    def show(label, r):
        print(f"{label:40s} max/std {100 * r[0]:6.2f} %   rms {100 * r[1]:5.3f} %", flush=True)

    show("f32 (check against out.npy)", run(quantize=False))
    show("int8 policy-1, 16-bit activations", run())
    if a.mode == "groups":
        for g, rx in GROUPS.items():
            show(f"all int8 but {g} f16", run(keep=rx))
        for g, rx in GROUPS.items():
            others = "|".join(v for k, v in GROUPS.items() if k != g)
            show(f"only {g} int8", run(keep=others))
    elif a.mode == "act8":
        show("act8 everywhere", run(act8=r"."))
        for g, rx in GROUPS.items():
            show(f"act8 on {g}", run(act8=rx))
    elif a.mode == "config":
        show(f"keep={a.keep} act8={a.act8}", run(keep=a.keep, act8=a.act8))


if __name__ == "__main__":
    main()
