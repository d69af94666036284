#!/usr/bin/env python3
"""Writes the small seed PNGs of Fuzz/corpus-pngtext/: 1x1 images carrying text chunks of every kind the
reader handles (tEXt with ASCII and Latin-1 text, zTXt, iTXt uncompressed and compressed, with language tags),
including a record like the one `glide sample` writes. Plain Python, no Pillow.
Run: python3 Fuzz/tools/make_pngtext_seeds.py Fuzz/corpus-pngtext
"""
import os, struct, sys, zlib


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(text_chunks):
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\x01\x02\x03")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(text_chunks)
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def text(k, v):
    return chunk(b"tEXt", k + b"\x00" + v)


def ztxt(k, v):
    return chunk(b"zTXt", k + b"\x00\x00" + zlib.compress(v))


def itxt(k, v, compressed=False, lang=b"", translated=b""):
    body = zlib.compress(v) if compressed else v
    return chunk(b"iTXt", k + b"\x00" + (b"\x01\x00" if compressed else b"\x00\x00") + lang + b"\x00" + translated + b"\x00" + body)


def main(out):
    os.makedirs(out, exist_ok=True)
    record = [
        text(b"glide:tool", b"glide-swift 0.1.0"), text(b"glide:command", b"sample"),
        itxt(b"glide:prompt", "un corgi peint \u00e0 l'huile \U0001F436".encode()), text(b"glide:seed", b"42"),
        text(b"glide:batch", b"1"), text(b"glide:steps", b"25"), text(b"glide:sampler", b"ddpm"),
        text(b"glide:guidance", b"3.0"), text(b"glide:model", b"digits-int8.glw"),
        text(b"glide:model-sha256", b"5f9763fc43a915f97473408d0e66020e72a118ba013a9a72ae9a086ec8289395"),
        text(b"glide:model-type", b"int8"),
    ]
    seeds = {
        "glide_record.png": record,
        "text_latin1.png": [text(b"Comment", b"caf\xe9 \xa9 2026"), text(b"Title", b"")],
        "ztxt.png": [ztxt(b"Description", b"a zlib-compressed comment " * 4)],
        "itxt_plain_lang.png": [itxt(b"Title", "T\u00edtulo".encode(), lang=b"es", translated="T\u00edtulo".encode())],
        "itxt_compressed.png": [itxt(b"parameters", b"a corgi, Steps: 20, Sampler: DDIM, Seed: 7", compressed=True)],
        "no_text.png": [],
    }
    for name, chunks in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(png(chunks))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "corpus-pngtext")
