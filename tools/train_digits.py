#!/usr/bin/env python3
"""Train the small GLIDE digits model that `glide sample` uses when no --model is given.

The model is the genuine reference `Text2ImUNet` (glide_text2im.model_creation.create_model_and_diffusion)
with a small 16x16 configuration and the real GPT-2 vocabulary, trained on scikit-learn's `load_digits`
(8x8 -> 16x16, bilinear-smoothed, dark strokes on a light ground, values in [-1, 1]) with prompts such as
"a handwritten digit seven" / "the number 7", and ~10% empty prompts for classifier-free guidance.

The reference diffusion object has no training loss, so the loss is ours: the Improved-DDPM hybrid
(noise MSE + the variational-bound term that trains the learned variance, computed with the reference's
q_sample, q_posterior_mean_variance and p_mean_variance; the mean is frozen inside the VB term).
What made prompt-following appear in a short run (from the probe described in issue 7): explicit init of the
uninitialised positional/padding embeddings, zero-initialised `transformer_proj` and attention `encoder_kv`,
a quarter of each batch drawn from t in [600, 1000), the MSE weighted up towards the noisiest steps, EMA weights.

During training the EMA weights are checked every --eval-every steps: 4 samples per digit (50 DDPM steps,
guidance 3) are read by the logistic-regression classifier from tools/train_digit_classifier.py
(our 16x16 samples pooled back to 8x8). Only a checkpoint reaching --pass-accuracy is saved; training stops
early once --stop-accuracy is reached --stop-after times in a row, or at --max-steps / --max-minutes.

Output (not committed; this script regenerates it):
    /tmp/digits/digits.pt             EMA state_dict (torch.save), keys exactly as the reference model's
    /tmp/digits/digits-options.json   the create_model_and_diffusion options
Log (committed): tools/train_digits.log (settings, loss curve, checks, time).

Run (this 2-core machine, PyTorch CPU):
    mkdir -p /tmp/digits
    nohup /tmp/venv/bin/python tools/train_digits.py > /tmp/digits/train.log 2>&1 &
Measured here: the learning rate is what decides how soon the prompt is followed. At Adam lr 4e-4 (the
earlier default) prompt-following switched on after ~1,750 steps and passed the classifier at ~2,800 (43 min).
Two probes from the same seed, run side by side on one thread each (logs summarised in BENCHMARKS.md
section 5): lr 8e-4 passed at step 1,400 (0.925; 0.95 at 1,600); lr 4e-4 with the text pathway at x3
(--text-lr-mult 3) passed at 1,600 (0.95). The default is now lr 8e-4; tools/train_digits-stage1.log is one run
with the defaults (2 threads, 0.6-0.9 s per step here).
That run follows the prompt with DDPM but its deterministic samples (DDIM, dpm++2m) were off (80-88 % with ddim25).
The shipped model is a second run continuing from it (--init-glw) with small-noise t-sampling (--small-frac), a flat
MSE weight, an annealed lr and DDIM-25 checks (--ddim-check): tools/train_digits.log; commands in Models/README.md.
Then convert:
    glide convert /tmp/digits/digits.pt --config /tmp/digits/digits-options.json ... (see Models/README.md)
"""

import argparse
import copy
import json
import math
import os
import sys
import time

# Spinning OpenMP workers hurt badly when the cores are shared; must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# PyTorch frees and re-allocates the same large activation buffers every step; by default glibc hands them back
# to the kernel (mmap/munmap) each time, which cost a third of the CPU time here as page faults.
try:
    import ctypes

    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
    _libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
except OSError:
    pass

import numpy as np  # noqa: E402
import torch as th  # noqa: E402

from glide_text2im.model_creation import (  # noqa: E402
    create_gaussian_diffusion,
    create_model_and_diffusion,
    model_and_diffusion_defaults,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_digit_classifier import to_16x16, train as train_classifier  # noqa: E402
from guidance import guided_model_fn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TRAIN_TEMPLATES = [
    "a handwritten digit {w}",
    "a handwritten digit {d}",
    "the number {d}",
    "the number {w}",
    "the digit {d}",
]
EVAL_TEMPLATES = ["a handwritten digit {w}", "the number {d}", "a handwritten digit {d}"]


def small_options():
    """The 16x16 configuration from issue 7 (everything else is the reference default)."""
    opts = model_and_diffusion_defaults()
    opts.update(
        image_size=16,
        num_channels=32,
        num_res_blocks=1,
        channel_mult="1,2",
        attention_resolutions="16,8",
        num_head_channels=16,
        xf_width=64,
        xf_layers=2,
        xf_heads=4,
        text_ctx=16,
        use_fp16=False,
        dropout=0.0,
    )
    return opts


# ---- Improved-DDPM hybrid loss (our own code) -------------------------------------------------

def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + th.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * th.exp(-logvar2))


def _std_normal_cdf(x):
    return 0.5 * (1.0 + th.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """log p(x) of 8-bit data (bins of width 2/255 in [-1, 1]) under a Gaussian, elementwise."""
    centered = x - means
    inv_std = th.exp(-log_scales)
    cdf_plus = _std_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = _std_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = th.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = th.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = th.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return th.where(x < -0.999, log_cdf_plus, th.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def hybrid_loss(model, diffusion, x_start, t, tokens, mask, weight):
    noise = th.randn_like(x_start)
    x_t = diffusion.q_sample(x_start, t, noise=noise)
    out = model(x_t, t, tokens=tokens, mask=mask)
    C = x_start.shape[1]
    eps, var_values = out[:, :C], out[:, C:]
    mse = ((eps - noise) ** 2).mean(dim=(1, 2, 3))

    frozen = th.cat([eps.detach(), var_values], dim=1)
    p = diffusion.p_mean_variance(lambda *a, **k: frozen, x_t, t, clip_denoised=False)
    true_mean, _, true_logvar = diffusion.q_posterior_mean_variance(x_start=x_start, x_t=x_t, t=t)
    kl = normal_kl(true_mean, true_logvar, p["mean"], p["log_variance"]).mean(dim=(1, 2, 3)) / math.log(2.0)
    nll = -discretized_gaussian_log_likelihood(x_start, p["mean"], 0.5 * p["log_variance"])
    nll = nll.mean(dim=(1, 2, 3)) / math.log(2.0)
    vb = th.where(t == 0, nll, kl) * (diffusion.num_timesteps / 1000.0)
    loss = (weight * mse + vb).mean()
    return loss, mse.mean().item(), vb.mean().item()


# ---- init ------------------------------------------------------------------------------------

def init_model(model):
    """Init as issue 7's probe: the uninitialised embeddings get N(0, 0.01); the token embedding keeps
    nn.Embedding's N(0, 1) (a small init, e.g. std 0.02, left the prompt ignored for 2,000+ steps here);
    the text pathway into the UNet (transformer_proj, every attention block's encoder_kv) starts at zero."""
    with th.no_grad():
        th.nn.init.normal_(model.positional_embedding, std=0.01)
        if getattr(model, "padding_embedding", None) is not None:
            th.nn.init.normal_(model.padding_embedding, std=0.01)
    zero_text_pathway(model)


def zero_text_pathway(model):
    """Zero the layers that carry the text into the UNet: transformer_proj and every encoder_kv."""
    with th.no_grad():
        th.nn.init.zeros_(model.transformer_proj.weight)
        th.nn.init.zeros_(model.transformer_proj.bias)
        for name, module in model.named_modules():
            if name.endswith("encoder_kv"):
                th.nn.init.zeros_(module.weight)
                th.nn.init.zeros_(module.bias)


def is_text_pathway(name):
    """Parameters that carry the prompt: the text transformer and its embeddings, and what feeds it to the UNet."""
    return (name.split(".")[0] in ("token_embedding", "positional_embedding", "padding_embedding", "transformer",
                                   "final_ln", "transformer_proj")
            or ".encoder_kv." in name)


def load_glw_state_dict(path):
    """The tensors of a .glw file (Formats/glw.md) as a float32 state_dict; f32, f16 and bf16 entries only
    (use the f16 file: int8 matrices are refused). Embedded files (the tokenizer) are skipped."""
    import struct
    import zlib  # noqa: F401  (CRCs are not checked here; `glide verify` does that)

    data = open(path, "rb").read()
    if data[:4] != b"GLWF":
        raise ValueError(f"{path}: not a GLW file")
    table_offset, entry_count, names_offset = struct.unpack_from("<QQQ", data, 32)
    state = {}
    for i in range(entry_count):
        e = table_offset + 128 * i
        name_off, name_len, dtype, rank, flags = struct.unpack_from("<QIBBH", data, e)
        shape = struct.unpack_from("<8Q", data, e + 16)[:rank]
        data_offset, data_length = struct.unpack_from("<QQ", data, e + 80)
        name = data[names_offset + name_off:names_offset + name_off + name_len].decode()
        if flags & 1:
            continue
        raw = data[data_offset:data_offset + data_length]
        if dtype == 0:
            a = np.frombuffer(raw, dtype="<f4")
        elif dtype == 1:
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dtype == 2:
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype == 4:
            a = np.frombuffer(raw, dtype="<i8")
        else:
            raise ValueError(f"{path}: entry {name} has dtype {dtype}; use the f16 or f32 file")
        state[name] = th.from_numpy(a.reshape(shape).copy())
    return state


# ---- evaluation ------------------------------------------------------------------------------

def tokens_for(tokenizer, text, ctx):
    toks, mask = tokenizer.padded_tokens_and_mask(tokenizer.encode(text) if text else [], ctx)
    return toks, mask


@th.no_grad()
def sample_digits(model, opts, classifier, per_digit, steps, guidance, seed, sampler="ddpm"):
    """Sample per_digit images per digit with classifier-free guidance as the reference notebook does."""
    tok = model.tokenizer
    ctx = opts["text_ctx"]
    labels, prompts = [], []
    for d in range(10):
        for i in range(per_digit):
            labels.append(d)
            prompts.append(EVAL_TEMPLATES[i % len(EVAL_TEMPLATES)].format(d=d, w=WORDS[d]))
    n = len(prompts)
    cond = [tokens_for(tok, p, ctx) for p in prompts]
    uncond = tokens_for(tok, "", ctx)
    tokens = th.tensor([c[0] for c in cond] + [uncond[0]] * n)
    mask = th.tensor([c[1] for c in cond] + [uncond[1]] * n, dtype=th.bool)
    respacing = steps if sampler == "ddpm" else f"ddim{steps}" if str(steps).isdigit() else steps
    diffusion = create_gaussian_diffusion(1000, opts["noise_schedule"], str(respacing))

    model_fn = guided_model_fn(model, guidance)

    state = th.get_rng_state()
    th.manual_seed(seed)
    shape = (2 * n, 3, opts["image_size"], opts["image_size"])
    kw = dict(clip_denoised=True, model_kwargs=dict(tokens=tokens, mask=mask), progress=False, device="cpu")
    if sampler == "ddpm":
        samples = diffusion.p_sample_loop(model_fn, shape, **kw)[:n]
    else:
        samples = diffusion.ddim_sample_loop(model_fn, shape, **kw)[:n]
    th.set_rng_state(state)
    preds = classifier.predict(samples.numpy())
    acc = float((preds == np.array(labels)).mean())
    return acc, samples, labels, preds


def save_grid(samples, path, per_row=10):
    from PIL import Image

    x = ((samples + 1) * 127.5).round().clamp(0, 255).to(th.uint8).numpy()  # [N, 3, H, W]
    n, _, h, w = x.shape
    rows = (n + per_row - 1) // per_row
    grid = np.full((rows * h, per_row * w, 3), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, per_row)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = x[i].transpose(1, 2, 0)
    Image.fromarray(grid).resize((grid.shape[1] * 4, grid.shape[0] * 4), Image.NEAREST).save(path)


# ---- main ------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default="/tmp/digits")
    ap.add_argument("--log", default=os.path.join(HERE, "train_digits.log"), help="committed training log")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--text-lr-mult", type=float, default=1.0,
                    help="learning-rate multiplier for the text pathway (token/positional/padding embeddings, "
                         "text transformer, transformer_proj, every encoder_kv)")
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--max-steps", type=int, default=5000)
    ap.add_argument("--max-minutes", type=float, default=30.0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-from", type=int, default=750)
    ap.add_argument("--eval-per-digit", type=int, default=4)
    ap.add_argument("--pass-accuracy", type=float, default=0.90)
    ap.add_argument("--stop-accuracy", type=float, default=0.95)
    ap.add_argument("--stop-after", type=int, default=2, help="consecutive checks at --stop-accuracy")
    ap.add_argument("--empty-prob", type=float, default=0.1)
    ap.add_argument("--noisy-frac", type=float, default=0.25, help="share of each batch with t in [600, 1000)")
    ap.add_argument("--small-frac", type=float, default=0.0,
                    help="share of each batch with t in [0, --small-t) (small noise levels, which the "
                         "deterministic samplers' last steps rely on)")
    ap.add_argument("--small-t", type=int, default=250)
    ap.add_argument("--weight", choices=["noisy", "flat"], default="noisy",
                    help="MSE weight: 'noisy' = 1 + t/1000 (the first recipe), 'flat' = 1")
    ap.add_argument("--lr-decay", type=float, default=1.0,
                    help="cosine-anneal the learning rate to lr * this at --max-steps (1 = constant)")
    ap.add_argument("--ddim-check", action="store_true",
                    help="also read DDIM-25 samples at every check; a checkpoint is saved only if both DDPM-50 "
                         "passes --pass-accuracy and DDIM-25 is the best so far")
    ap.add_argument("--init-glw", default=None,
                    help="continue from the weights of a .glw file (e.g. Models/digits-f16.glw); optimizer restarts")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-from", default=None,
                    help="continue from a saved state_dict (e.g. /tmp/digits/digits-failed.pt); optimizer restarts")
    ap.add_argument("--reinit-text", action="store_true",
                    help="with --init-from: re-initialise the token embedding (N(0, 1)) and zero transformer_proj "
                         "and encoder_kv, keeping the image model")
    args = ap.parse_args()

    th.set_num_threads(args.threads)
    th.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    log_lines = []

    def log(msg):
        print(msg, flush=True)
        log_lines.append(msg)
        with open(args.log, "w") as f:
            f.write("\n".join(log_lines) + "\n")

    opts = small_options()
    model, diffusion = create_model_and_diffusion(**opts)
    init_model(model)
    if args.init_glw:
        model.load_state_dict(load_glw_state_dict(args.init_glw))
    if args.init_from:
        model.load_state_dict(th.load(args.init_from))
        if args.reinit_text:
            with th.no_grad():
                th.nn.init.normal_(model.token_embedding.weight, std=1.0)
            zero_text_pathway(model)
    model.train()
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    n_params = sum(p.numel() for p in model.parameters())
    n_tok = model.token_embedding.weight.numel()

    from sklearn.datasets import load_digits

    digits = load_digits()
    images = th.from_numpy(to_16x16(digits.images))[:, None].repeat(1, 3, 1, 1)  # [N, 3, 16, 16]
    labels = digits.target
    classifier, clf_acc = train_classifier(verbose=False)

    tok = model.tokenizer
    ctx = opts["text_ctx"]
    prompt_table = [[tokens_for(tok, t.format(d=d, w=WORDS[d]), ctx) for t in TRAIN_TEMPLATES] for d in range(10)]
    empty = tokens_for(tok, "", ctx)

    log("# tools/train_digits.py training log")
    log(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    if args.init_glw:
        log(f"continued from the weights of {args.init_glw}")
    if args.init_from:
        log(f"continued from {args.init_from}" + (" with the text pathway re-initialised" if args.reinit_text else ""))
    log(f"torch {th.__version__}, threads {args.threads}, host cores {os.cpu_count()}, "
        f"load average at start {os.getloadavg()[0]:.2f}")
    log("model options: " + json.dumps(opts, sort_keys=True))
    log(f"parameters: {n_params:,} ({n_tok:,} in the GPT-2 token embedding)")
    log(f"data: sklearn load_digits, {len(labels)} images, 8x8 -> 16x16 bilinear, dark ink on light, [-1, 1]")
    log(f"prompts: {TRAIN_TEMPLATES}, empty with p={args.empty_prob}")
    log(f"training: batch {args.batch}, Adam lr {args.lr} (text pathway x{args.text_lr_mult}), grad-clip 1.0, EMA {args.ema}, "
        f"{args.noisy_frac:.2f} of each batch t in [600,1000), {args.small_frac:.2f} in [0,{args.small_t}), "
        f"MSE weight {'1 + t/1000' if args.weight == 'noisy' else '1'}, hybrid loss (MSE + VB), "
        f"lr cosine to x{args.lr_decay} at step {args.max_steps}")
    log(f"check: every {args.eval_every} steps from {args.eval_from}: {args.eval_per_digit} samples/digit, "
        f"50 DDPM steps{' and DDIM 25 steps' if args.ddim_check else ''}, guidance 3, EMA weights; classifier held-out accuracy on real digits {clf_acc:.4f}")
    log(f"stop: {args.stop_after} consecutive checks >= {args.stop_accuracy}, or {args.max_steps} steps, "
        f"or {args.max_minutes} min; save only checks >= {args.pass_accuracy}")
    log("")
    log("step  loss     mse      vb       elapsed_s")

    text_params = [p for n, p in model.named_parameters() if is_text_pathway(n)]
    image_params = [p for n, p in model.named_parameters() if not is_text_pathway(n)]
    opt = th.optim.Adam([
        dict(params=image_params, lr=args.lr),
        dict(params=text_params, lr=args.lr * args.text_lr_mult),
    ], lr=args.lr, fused=True)
    t0 = time.time()
    best_acc, passes_in_row, saved_step = -1.0, 0, None
    run_loss = run_mse = run_vb = 0.0
    run_n = 0
    ckpt_path = os.path.join(args.out_dir, "digits.pt")
    step = 0
    for step in range(1, args.max_steps + 1):
        idx = rng.integers(0, len(labels), size=args.batch)
        x0 = images[idx]
        toks, masks = [], []
        for i in idx:
            if rng.random() < args.empty_prob:
                t_, m_ = empty
            else:
                t_, m_ = prompt_table[labels[i]][rng.integers(0, len(TRAIN_TEMPLATES))]
            toks.append(t_)
            masks.append(m_)
        tokens = th.tensor(toks)
        mask = th.tensor(masks, dtype=th.bool)
        n_noisy = int(round(args.batch * args.noisy_frac))
        n_small = int(round(args.batch * args.small_frac))
        t = th.cat([
            th.randint(0, diffusion.num_timesteps, (args.batch - n_noisy - n_small,)),
            th.randint(600, diffusion.num_timesteps, (n_noisy,)),
            th.randint(0, args.small_t, (n_small,)),
        ])
        weight = 1.0 + t.float() / diffusion.num_timesteps if args.weight == "noisy" else th.ones(args.batch)
        lr_now = args.lr * (args.lr_decay + (1 - args.lr_decay) * 0.5 * (1 + math.cos(math.pi * (step - 1) / args.max_steps)))
        opt.param_groups[0]["lr"] = lr_now
        opt.param_groups[1]["lr"] = lr_now * args.text_lr_mult

        loss, mse, vb = hybrid_loss(model, diffusion, x0, t, tokens, mask, weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        th.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with th.no_grad():
            d = min(args.ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)

        run_loss += loss.item()
        run_mse += mse
        run_vb += vb
        run_n += 1
        if step % 50 == 0:
            log(f"{step:5d} {run_loss / run_n:.5f} {run_mse / run_n:.5f} {run_vb / run_n:.5f} {time.time() - t0:8.1f}")
            run_loss = run_mse = run_vb = 0.0
            run_n = 0

        elapsed_min = (time.time() - t0) / 60
        last = step == args.max_steps or elapsed_min >= args.max_minutes
        if (step >= args.eval_from and step % args.eval_every == 0) or last:
            te = time.time()
            acc, samples, lab, preds = sample_digits(ema, opts, classifier, args.eval_per_digit, 50, 3.0, seed=1234)
            save_grid(samples, os.path.join(args.out_dir, f"check-{step:05d}.png"), per_row=args.eval_per_digit * 2)
            msg = f"check step {step}: prompted-digit accuracy {acc:.3f} ({len(lab)} samples)"
            score = acc
            if args.ddim_check:
                dacc, dsamples, _, _ = sample_digits(ema, opts, classifier, args.eval_per_digit, 25, 3.0, seed=1234,
                                                     sampler="ddim")
                save_grid(dsamples, os.path.join(args.out_dir, f"check-{step:05d}-ddim25.png"),
                          per_row=args.eval_per_digit * 2)
                msg += f", ddim25 {dacc:.3f}"
                score = dacc
            msg += f" in {time.time() - te:.1f}s"
            th.save(ema.state_dict(), os.path.join(args.out_dir, "digits-latest.pt"))  # to continue from (--init-from)
            if acc >= args.pass_accuracy and score >= best_acc:
                th.save(ema.state_dict(), ckpt_path)
                with open(os.path.join(args.out_dir, "digits-options.json"), "w") as f:
                    json.dump(opts, f, indent=1, sort_keys=True)
                best_acc, saved_step = score, step
                msg += f" -> saved {ckpt_path}"
            log(msg)
            passes_in_row = passes_in_row + 1 if score >= args.stop_accuracy else 0
            if passes_in_row >= args.stop_after:
                log(f"stopping: {passes_in_row} consecutive checks >= {args.stop_accuracy}")
                break
        if last:
            if elapsed_min >= args.max_minutes:
                log(f"stopping: time limit {args.max_minutes} min")
            break

    total = time.time() - t0
    log("")
    log(f"trained {step} steps in {total / 60:.1f} min ({total / max(step, 1):.2f} s/step incl. checks)")
    if saved_step is None:
        th.save(ema.state_dict(), os.path.join(args.out_dir, "digits-failed.pt"))
        log(f"NO checkpoint passed {args.pass_accuracy}; last EMA weights in {args.out_dir}/digits-failed.pt")
        sys.exit(1)
    log(f"kept checkpoint from step {saved_step}: accuracy {best_acc:.3f} "
        f"({'DDIM 25' if args.ddim_check else '50 DDPM'} steps, guidance 3)")
    ema.load_state_dict(th.load(ckpt_path))
    for spec, sampler in [("25", "ddim"), ("fast27", "ddim")]:
        acc, samples, _, _ = sample_digits(ema, opts, classifier, args.eval_per_digit, spec, 3.0, seed=99, sampler=sampler)
        label = f"ddim{spec}" if spec.isdigit() else spec
        save_grid(samples, os.path.join(args.out_dir, f"final-{label}.png"), per_row=args.eval_per_digit * 2)
        log(f"kept checkpoint, {label} DDIM guidance 3: accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
