#!/usr/bin/env python3
"""Writes the Imaging test fixtures under Tests/Fixtures/imaging/ (see the README there).

Usage:  python tools/make_image_goldens.py [--shared ../shared]
Needs numpy and Pillow (the reference pipeline's image library). Everything is deterministic.

PNG inputs are written by a small encoder here (Pillow cannot write every colour type / bit depth / Adam7);
the expected pixels are what Pillow's `Image.open(f).convert('RGB')` returns, cross-checked against an
independent numpy model of that conversion. Resize goldens are Pillow's `resize(size, Image.BICUBIC)`.
"""
import argparse
import io
import json
import os
import struct
import zlib

import numpy as np
import PIL
from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "imaging")


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def pack_row(samples: np.ndarray, depth: int) -> bytes:
    """samples: 1-D array of sample values of one scanline."""
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    per = 8 // depth
    out = bytearray((len(samples) * depth + 7) // 8)
    for i, v in enumerate(samples):
        out[i // per] |= int(v) << (8 - depth - (i % per) * depth)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(row: bytes, prev: bytes, bpp: int, ftype: int) -> bytes:
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i] if prev else 0
        c = prev[i - bpp] if prev and i >= bpp else 0
        pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][ftype]
        out[i] = (row[i] - pred) & 255
    return bytes(out)


def encode_png(samples: np.ndarray, depth: int, ctype: int, interlace: bool, extra: bytes, rng, idat_parts: int) -> bytes:
    """samples: [H, W, S] integer array."""
    h, w, s = samples.shape
    bpp = max(1, s * depth // 8)
    passes = [(x0, y0, dx, dy) for (x0, y0, dx, dy) in ADAM7] if interlace else [(0, 0, 1, 1)]
    raw = bytearray()
    for (x0, y0, dx, dy) in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = None
        for r in sub:
            row = pack_row(r.reshape(-1), depth)
            ftype = int(rng.integers(0, 5))
            raw.append(ftype)
            raw += filter_row(row, prev, bpp, ftype)
            prev = row
    comp = zlib.compress(bytes(raw), 9)
    cuts = sorted(set([0, len(comp)] + [int(x) for x in rng.integers(1, max(2, len(comp)), idat_parts - 1)]))
    idats = b"".join(chunk(b"IDAT", comp[a:b]) for a, b in zip(cuts, cuts[1:]))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + idats + chunk(b"IEND", b"")


def model_rgb(samples, depth, ctype, palette):
    """Independent numpy model of Pillow's convert('RGB') for the decoded samples."""
    s = samples.astype(np.int64)
    if ctype == 0:
        g = np.minimum(s[..., 0], 255) if depth == 16 else s[..., 0] * (255 // ((1 << depth) - 1))
        return np.repeat(g[..., None], 3, axis=2).astype(np.uint8)
    if ctype == 3:
        pal = np.zeros((256, 3), np.int64)
        pal[: len(palette)] = palette
        return pal[s[..., 0]].astype(np.uint8)
    hi = (s >> 8) if depth == 16 else s
    if ctype == 4:
        return np.repeat(hi[..., :1], 3, axis=2).astype(np.uint8)
    return hi[..., :3].astype(np.uint8)


def make_pngs(manifest):
    rng = np.random.default_rng(6)
    combos = [(0, d) for d in (1, 2, 4, 8, 16)] + [(2, 8), (2, 16)] + [(3, d) for d in (1, 2, 4, 8)] + \
             [(4, 8), (4, 16), (6, 8), (6, 16)]
    w, h = 13, 11
    for ctype, depth in combos:
        for interlace in (False, True):
            maxv = (1 << depth) - 1
            s = SAMPLES[ctype]
            if ctype == 3:
                n_entries = min(1 << depth, 7 if depth >= 4 else (1 << depth))
                palette = rng.integers(0, 256, (n_entries, 3))
                # indices include some past the palette's end for depth >= 4 (Pillow gives black)
                samples = rng.integers(0, min(maxv + 1, n_entries + 2), (h, w, 1))
                extra = chunk(b"PLTE", palette.astype(np.uint8).tobytes()) + chunk(b"tRNS", bytes([0, 128]))
            else:
                palette = None
                if depth == 16 and ctype == 0:
                    # mostly small values so Pillow's clip to 255 is visible on both sides
                    samples = rng.integers(0, 600, (h, w, s))
                else:
                    samples = rng.integers(0, maxv + 1, (h, w, s))
                extra = b""
                if ctype in (0, 2):
                    extra = chunk(b"tRNS", struct.pack(">" + "H" * s, *([1] * s)))
            extra = chunk(b"gAMA", struct.pack(">I", 45455)) + extra + chunk(b"tEXt", b"Comment\x00fixture")
            data = encode_png(samples, depth, ctype, interlace, extra, rng, idat_parts=3)
            name = f"png_c{ctype}_d{depth}{'_i' if interlace else ''}"
            with open(os.path.join(OUT, name + ".png"), "wb") as f:
                f.write(data)
            got = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
            want = model_rgb(samples, depth, ctype, palette)
            assert got.shape == (h, w, 3), (name, got.shape)
            assert np.array_equal(got, want), f"{name}: Pillow disagrees with the numpy model"
            with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
                f.write(got.tobytes())
            manifest["png"].append({"name": name, "width": w, "height": h})


def smooth_image(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([127 + 120 * np.sin(x / 7.0 + seed), 127 + 120 * np.cos(y / 5.0),
                     (x * 3 + y * 2) % 256], axis=2)
    noise = rng.integers(-40, 41, (h, w, 3))
    img = np.clip(base + noise, 0, 255).astype(np.uint8)
    # a few hard edges to provoke overshoot clipping
    img[h // 3: h // 2, w // 4: w // 2] = 255
    img[h // 2: h // 2 + 3, :] = 0
    return img


def make_resize(manifest):
    pairs = [((256, 256), (64, 64)), ((100, 80), (64, 64)), ((37, 37), (64, 64)), ((300, 200), (256, 256)),
             ((64, 48), (64, 20)), ((50, 64), (17, 64)), ((1, 1), (5, 3)), ((64, 64), (256, 256))]
    for i, ((sw, sh), (dw, dh)) in enumerate(pairs):
        src = smooth_image(sw, sh, i)
        name = f"resize_{sw}x{sh}_to_{dw}x{dh}"
        Image.fromarray(src).save(os.path.join(OUT, name + "_src.png"), optimize=True)
        out = np.array(Image.fromarray(src).resize((dw, dh), resample=Image.BICUBIC))
        with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
            f.write(out.tobytes())
        manifest["resize"].append({"name": name, "src": [sw, sh], "dst": [dw, dh]})


def exif_bytes(orientation):
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


def make_jpegs(manifest):
    src = smooth_image(24, 16, 42)
    im = Image.fromarray(src)
    for o in range(1, 9):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90, exif=exif_bytes(o))
        name = f"jpeg_orient{o}"
        with open(os.path.join(OUT, name + ".jpg"), "wb") as f:
            f.write(buf.getvalue())
        opened = Image.open(io.BytesIO(buf.getvalue()))
        raw = np.array(opened.convert("RGB"))
        transposed = np.array(ImageOps.exif_transpose(opened).convert("RGB"))
        with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
            f.write(transposed.tobytes())
        with open(os.path.join(OUT, name + "_raw.rgb"), "wb") as f:
            f.write(raw.tobytes())
        manifest["jpeg"].append({"name": name, "width": transposed.shape[1], "height": transposed.shape[0],
                                 "raw_width": raw.shape[1], "raw_height": raw.shape[0]})
    variants = {
        "jpeg_grey": (im.convert("L"), {}),
        "jpeg_progressive": (im, {"progressive": True, "quality": 80}),
        "jpeg_cmyk": (im.convert("CMYK"), {"quality": 95}),
        "jpeg_420": (Image.fromarray(smooth_image(23, 17, 7)), {"subsampling": 2, "quality": 75}),
    }
    for name, (img, opts) in variants.items():
        buf = io.BytesIO()
        img.save(buf, "JPEG", **opts)
        with open(os.path.join(OUT, name + ".jpg"), "wb") as f:
            f.write(buf.getvalue())
        got = np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
            f.write(got.tobytes())
        manifest["jpeg"].append({"name": name, "width": got.shape[1], "height": got.shape[0],
                                 "raw_width": got.shape[1], "raw_height": got.shape[0]})
    # PNG with an eXIf orientation chunk (Pillow's exif_transpose honours it too)
    buf = io.BytesIO()
    Image.fromarray(src).save(buf, "PNG", exif=exif_bytes(6))
    with open(os.path.join(OUT, "png_exif_orient6.png"), "wb") as f:
        f.write(buf.getvalue())
    opened = Image.open(io.BytesIO(buf.getvalue()))
    t = np.array(ImageOps.exif_transpose(opened).convert("RGB"))
    with open(os.path.join(OUT, "png_exif_orient6.rgb"), "wb") as f:
        f.write(t.tobytes())
    manifest["png_exif"] = {"name": "png_exif_orient6", "width": t.shape[1], "height": t.shape[0]}


def make_tensor_goldens(manifest, shared):
    # show_images: ((batch + 1) * 127.5).round().clamp(0, 255) -> [H, N*W, 3]
    import torch as th
    rng = np.random.default_rng(3)
    batch = rng.uniform(-1.2, 1.2, (2, 3, 4, 5)).astype(np.float32)
    # exact half-way cases: (x+1)*127.5 = k + 0.5
    batch[0, 0, 0, :4] = np.array([0.5 / 127.5 - 1, 1.5 / 127.5 - 1, 2.5 / 127.5 - 1, -1.0], np.float32)
    t = th.from_numpy(batch)
    scaled = ((t + 1) * 127.5).round().clamp(0, 255).to(th.uint8)
    grid = scaled.permute(2, 0, 3, 1).reshape([4, -1, 3]).numpy()
    batch.tofile(os.path.join(OUT, "tensor_2x3x4x5.f32"))
    with open(os.path.join(OUT, "tensor_2x3x4x5_grid.rgb"), "wb") as f:
        f.write(grid.tobytes())
    # the upsampler's low_res = ((samples + 1) * 127.5).round() / 127.5 - 1
    (((t + 1) * 127.5).round() / 127.5 - 1).numpy().astype("<f4").tofile(os.path.join(OUT, "tensor_2x3x4x5_quantized.f32"))
    # read_image('grass.png', 64) from the inpaint notebook
    grass = os.path.join(shared, "images", "grass.png")
    if os.path.exists(grass):
        pil = Image.open(grass).convert("RGB")
        for size in (64, 256):
            r = pil.resize((size, size), resample=Image.BICUBIC)
            arr = np.array(r)
            with open(os.path.join(OUT, f"grass_{size}.rgb"), "wb") as f:
                f.write(arr.tobytes())
        tensor = (th.from_numpy(np.array(pil.resize((64, 64), resample=Image.BICUBIC)))[None]
                  .permute(0, 3, 1, 2).float() / 127.5 - 1)
        tensor.numpy().astype("<f4").tofile(os.path.join(OUT, "grass_64_tensor.f32"))


def make_mask_goldens(manifest):
    import torch as th
    import torch.nn.functional as F
    rng = np.random.default_rng(11)
    cases = []
    for i, ((sw, sh), (dw, dh)) in enumerate([((50, 40), (64, 64)), ((300, 211), (64, 64)), ((7, 9), (64, 64)),
                                              ((64, 64), (256, 256)), ((90, 33), (17, 41))]):
        blocks = rng.integers(0, 256, (sh // 3 + 1, sw // 3 + 1, 3)).astype(np.uint8)
        src = np.ascontiguousarray(blocks.repeat(3, axis=0).repeat(3, axis=1)[:sh, :sw])   # compressible
        name = f"mask_{sw}x{sh}_to_{dw}x{dh}"
        Image.fromarray(src).save(os.path.join(OUT, name + "_src.png"))
        grey = Image.fromarray(src).convert("L")
        with open(os.path.join(OUT, name + "_grey.raw"), "wb") as f:
            f.write(np.array(grey).tobytes())
        with open(os.path.join(OUT, name + "_nearest.raw"), "wb") as f:
            f.write(np.array(grey.resize((dw, dh), resample=Image.NEAREST)).tobytes())
        cases.append({"name": name, "src": [sw, sh], "dst": [dw, dh]})
    manifest["mask"] = cases
    # torch F.interpolate nearest on float planes
    interp = []
    for (ih, iw), (oh, ow) in [((64, 64), (256, 256)), ((20, 47), (64, 64)), ((64, 64), (37, 100)), ((3, 5), (7, 13))]:
        plane = th.arange(ih * iw, dtype=th.float32).reshape(1, 1, ih, iw)
        out = F.interpolate(plane, (oh, ow), mode="nearest").reshape(-1).numpy().astype(np.int32)
        name = f"interp_{iw}x{ih}_to_{ow}x{oh}"
        out.astype("<i4").tofile(os.path.join(OUT, name + ".i32"))
        interp.append({"name": name, "src": [iw, ih], "dst": [ow, oh]})
    manifest["interpolate"] = interp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    manifest = {"pillow": PIL.__version__, "numpy": np.__version__, "png": [], "resize": [], "jpeg": []}
    make_pngs(manifest)
    make_resize(manifest)
    make_jpegs(manifest)
    make_tensor_goldens(manifest, args.shared)
    make_mask_goldens(manifest)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
