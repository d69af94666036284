#!/usr/bin/env python3
"""Writes the small `.glw` seed files of Fuzz/corpus-glw/ (GLW version 1, see Formats/glw.md).

Plain Python (no PyTorch): each seed has a few tensors of every dtype (f32, f16, bf16, int8 with scales,
i64, bool) and an embedded tokenizer file, so the fuzzer starts from files the reader accepts.
Run: python3 Fuzz/tools/make_glw_seeds.py Fuzz/corpus-glw
"""
import json, struct, sys, zlib, os

ALIGN = 64
WIDTH = {0: 4, 1: 2, 2: 2, 3: 1, 4: 8, 5: 1, 6: 1}


def up(x, a):
    return (x + a - 1) // a * a


def glw(entries, model="tensors", hyper=None):
    """entries: list of (name, dtype, shape, data bytes, scales bytes or None, is_file)."""
    meta = json.dumps({"format": "glw", "model": model, "hyperparameters": hyper or {}},
                      sort_keys=True, separators=(",", ":")).encode()
    table_off = up(64 + len(meta), 8)
    names = b"".join(e[0].encode() for e in entries)
    names_off = table_off + 128 * len(entries)
    data_start = up(names_off + len(names), ALIGN)
    body = bytearray(data_start)
    table = bytearray()
    pos, name_pos = data_start, 0
    for name, dtype, shape, data, scales, is_file in entries:
        off = up(pos, ALIGN)
        body += bytes(off - len(body))
        body += data
        s_off = s_len = 0
        if scales is not None:
            s_off = up(off + len(data), 64)
            body += bytes(s_off - len(body))
            body += scales
            s_len = len(scales)
        crc = zlib.crc32(bytes(body[off:]))
        pos = len(body)
        nb = name.encode()
        table += struct.pack("<QIBBH", name_pos, len(nb), dtype, len(shape), 1 if is_file else 0)
        table += struct.pack("<8Q", *(list(shape) + [0] * (8 - len(shape))))
        table += struct.pack("<QQQQIIQ", off, len(data), s_off, s_len, crc, 0, 0)
        name_pos += len(nb)
    header = struct.pack("<4sIII6Q", b"GLWF", 1, ALIGN, 0, 64, len(meta), table_off, len(entries),
                         names_off, len(names))
    index = header + meta + bytes(table_off - 64 - len(meta)) + table + names
    body[:len(index)] = index
    crc = zlib.crc32(bytes(body[:data_start]))
    body[12:16] = struct.pack("<I", crc)
    return bytes(body)


def main(out):
    os.makedirs(out, exist_ok=True)
    f32 = struct.pack("<6f", 1, -2, 3.5, 0, 1e-3, 7)
    f16 = struct.pack("<4e", 1, -2, 0.5, 65504)
    bf16 = bytes([0x80, 0x3F, 0x00, 0xC0, 0x00, 0x00, 0x40, 0x40])
    q = bytes([1, 255, 127, 129, 0, 5])
    seeds = {
        "all_dtypes.glw": [
            ("w.f32", 0, [2, 3], f32, None, False),
            ("w.f16", 1, [4], f16, None, False),
            ("w.bf16", 2, [2, 2], bf16, None, False),
            ("w.int8", 3, [2, 3], q, struct.pack("<2f", 0.01, 0.5), False),
            ("ids", 4, [2], struct.pack("<2q", 3, -1), None, False),
            ("mask", 5, [3], bytes([0, 1, 1]), None, False),
            ("tokenizer/vocab.txt", 6, [5], b"a b c", None, True),
        ],
        "scalar_and_empty.glw": [
            ("scalar", 0, [], struct.pack("<f", 2.5), None, False),
            ("empty", 0, [0, 4], b"", None, False),
        ],
        "one_tensor.glw": [("x", 0, [1], struct.pack("<f", 1), None, False)],
        "no_entries.glw": [],
    }
    for name, entries in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(glw(entries))
    with open(os.path.join(out, "unet_hyper.glw"), "wb") as f:
        f.write(glw([("x", 2, [2], bf16[:4], None, False)], model="unet",
                    hyper={"image_size": 64, "channel_mult": "", "dropout": 0.1, "inpaint": False}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "corpus-glw")
