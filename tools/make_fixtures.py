#!/usr/bin/env python3
"""Write the small real torch.save fixtures the Checkpoint tests read.

Usage:  /path/to/python tools/make_fixtures.py [OUT_DIR]     (default: Tests/Fixtures/checkpoint)

Needs PyTorch (pip install torch). For every fixture X.pt it also writes X.json: the tensors torch
itself sees (name, dtype, shape, strides, storage offset, contiguity, the packed little-endian bytes
as hex) and the plain metadata, so the Swift tests can check every value exactly.

Fixtures (all seeded, so re-running gives the same tensor values; zip files differ only in
torch's random serialization id):
  dtypes.pt            zip; one tensor per dtype f32 f16 bf16 f64 i64 i32 i16 i8 u8 bool
  views.pt             zip; shared storage, storage offsets, transposed / strided / expanded views,
                       a 0-d tensor, empty tensors
  nested.pt            zip; state dict under "state_dict" beside metadata (ints, floats, strings, None,
                       lists, tuples, dicts, torch.device, a big int)
  module.pt            zip; a small nn.Module's state_dict() (OrderedDict + BUILD of _metadata)
  parameters.pt        zip; nn.Parameter objects (torch._utils._rebuild_parameter) and bytes, protocol 4 pickle
  dtypes_legacy.pt, views_legacy.pt, nested_legacy.pt
                       the same objects with _use_new_zipfile_serialization=False
  dtypes_deflated.pt   dtypes.pt re-zipped with every entry deflated (data descriptors, like torch)
  dtypes_zip64.pt      dtypes.pt re-zipped with ZIP64 extra fields on every entry and 0xFFFFFFFF markers
"""
import io
import json
import os
import struct
import sys
import zipfile
import zlib

try:
    import torch
except ImportError:   # make_hostile_corpus.py imports only the zip writer from here
    torch = None


# ---------------------------------------------------------------------------------------------
# A small zip writer (also used by make_hostile_corpus.py) so we control every header field.

def write_zip(path, entries, **kwargs):
    """Writes zip_bytes(entries, **kwargs) to path."""
    with open(path, "wb") as f:
        f.write(zip_bytes(entries, **kwargs))


def zip_bytes(entries, deflate=False, zip64=False, data_descriptor=True, align=64, comment=b""):
    """entries: list of (name, bytes). A zip like torch's: local headers with zero CRC/sizes and a
    data descriptor (when data_descriptor), data aligned to `align` via a padding extra field.
    `deflate` may be True (all entries) or a set of names to deflate."""
    out = io.BytesIO()
    central = []
    for name, data in entries:
        nb = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        if deflate is True or (deflate and name in deflate):
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = c.compress(data) + c.flush()
            method = 8
        else:
            payload = data
            method = 0
        offset = out.tell()
        flags = 0x08 if data_descriptor else 0
        local_extra = b""
        if zip64:
            local_extra += struct.pack("<HHQQ", 1, 16, len(data), len(payload))
        hdr_len = 30 + len(nb) + len(local_extra)
        if align and method == 0:
            pad = (-(offset + hdr_len + 4)) % align
            local_extra += struct.pack("<HH", 0x4655, pad) + b"Z" * pad
        if data_descriptor:
            l_crc, l_cs, l_us = 0, 0, 0
        else:
            l_crc, l_cs, l_us = crc, len(payload), len(data)
        if zip64:
            l_cs, l_us = 0xFFFFFFFF, 0xFFFFFFFF
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, flags, method, 0, 0x21,
                              l_crc, l_cs, l_us, len(nb), len(local_extra)))
        out.write(nb)
        out.write(local_extra)
        out.write(payload)
        if data_descriptor:
            if zip64:
                out.write(struct.pack("<IIQQ", 0x08074B50, crc, len(payload), len(data)))
            else:
                out.write(struct.pack("<IIII", 0x08074B50, crc, len(payload), len(data)))
        central.append((nb, flags, method, crc, len(payload), len(data), offset))
    cd_offset = out.tell()
    for nb, flags, method, crc, csize, usize, offset in central:
        extra = b""
        c_cs, c_us, c_off = csize, usize, offset
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, usize, csize, offset)
            c_cs = c_us = c_off = 0xFFFFFFFF
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45 if zip64 else 20, 45 if zip64 else 20, flags,
                              method, 0, 0x21, crc, c_cs, c_us, len(nb), len(extra), 0, 0, 0, 0, c_off))
        out.write(nb)
        out.write(extra)
    cd_size = out.tell() - cd_offset
    n = len(central)
    if zip64:
        z64 = out.tell()
        out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_offset))
        out.write(struct.pack("<IIQI", 0x07064B50, 0, z64, 1))
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment)))
    else:
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_offset, len(comment)))
    out.write(comment)
    return out.getvalue()


def read_zip_entries(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


# ---------------------------------------------------------------------------------------------
# The objects saved.

def dtypes_obj():
    g = torch.Generator().manual_seed(1234)
    r = torch.randn(2, 3, generator=g)
    return {
        "f32": r.clone(),
        "f16": (torch.randn(3, 2, generator=g) * 4).half(),
        "bf16": torch.randn(5, generator=g).bfloat16(),
        "f64": torch.randn(2, 2, generator=g).double(),
        "i64": torch.tensor([-(2 ** 62), -1, 0, 1, 2 ** 62 + 12345]),
        "i32": torch.tensor([[-(2 ** 31), 7], [123456, 2 ** 31 - 1]], dtype=torch.int32),
        "i16": torch.tensor([-32768, -2, 3, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, -1, 0, 5, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 128, 255], dtype=torch.uint8),
        "bool": torch.tensor([[True, False, True], [False, False, True]]),
    }


def views_obj():
    g = torch.Generator().manual_seed(99)
    base = torch.randn(4, 6, generator=g)
    return {
        "base": base,
        "row1": base[1],                    # shares storage, offset 6
        "row2_tail": base[2, 3:],           # offset 15
        "transposed": base.t(),             # strides (1, 6)
        "every_other": base[:, ::2],        # strides (6, 2)
        "column": base[:, 4],               # stride 6, offset 4
        "expanded": torch.arange(3, dtype=torch.float32).expand(4, 3),   # stride 0
        "scalar": torch.tensor(3.25),       # 0-d
        "scalar_i64": torch.tensor(-7),
        "empty": torch.zeros(0, 3),
        "empty_f16": torch.zeros(2, 0, dtype=torch.float16),
        "half_view": torch.arange(12, dtype=torch.float16).reshape(3, 4)[1:, 1:3],
    }


def nested_obj():
    g = torch.Generator().manual_seed(7)
    sd = {
        "encoder.weight": torch.randn(4, 3, generator=g),
        "encoder.bias": torch.randn(4, generator=g),
        "decoder.weight": torch.randn(3, 4, generator=g).half(),
    }
    return {
        "epoch": 12,
        "state_dict": sd,
        "lr": 0.00025,
        "name": "tiny ünet",
        "nothing": None,
        "flags": [True, False],
        "shape": (64, 64),
        "config": {"channels": [32, 64], "dropout": 0.1, "attn": "16,8"},
        "device": torch.device("cpu"),
        "big": 2 ** 70 + 5,
        "negative": -123456789012,
    }


def module_obj():
    class TinyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.norm = torch.nn.GroupNorm(2, 4)
            self.proj = torch.nn.Linear(4, 2)
            self.emb = torch.nn.Embedding(5, 2)
            self.register_buffer("steps", torch.arange(3))

    torch.manual_seed(5)
    m = TinyNet()
    with torch.no_grad():
        for p in m.parameters():   # perturb everything (GroupNorm starts at 1/0)
            p.add_(torch.randn_like(p) * 0.1)
    return m.state_dict()


def parameters_obj():
    torch.manual_seed(11)
    m = torch.nn.Linear(3, 2)
    d = {name: p for name, p in m.named_parameters()}
    d["blob"] = b"\x00\x01\xfe"   # BINBYTES (protocol 2 would pickle bytes via _codecs.encode, which we refuse)
    return d


# ---------------------------------------------------------------------------------------------
# Expectations.

def dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def packed_hex(t):
    c = t.detach().contiguous()
    if c.numel() == 0:
        return ""
    return bytes(c.reshape(-1).view(torch.uint8).numpy().tobytes()).hex() if c.dtype != torch.bool \
        else bytes(c.reshape(-1).to(torch.uint8).numpy().tobytes()).hex()


def describe(v):
    if isinstance(v, torch.Tensor):
        return {"tensor": True}
    if isinstance(v, torch.device):
        return {"device": str(v)}
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    if isinstance(v, bool) or v is None or isinstance(v, (str, float)):
        return v
    if isinstance(v, int):
        return v if -(2 ** 63) <= v < 2 ** 63 else {"bigint": str(v)}
    if isinstance(v, tuple):
        return {"tuple": [describe(x) for x in v]}
    if isinstance(v, list):
        return [describe(x) for x in v]
    if isinstance(v, dict):
        return {"dict": [[describe(k), describe(x)] for k, x in v.items()]}
    raise TypeError(type(v))


def expectation(obj, path, fmt, state_dict_key=None):
    loaded = torch.load(path, weights_only=False)  # our own files
    sd = loaded[state_dict_key] if state_dict_key else loaded
    tensors = []
    for name, t in sd.items():
        if not isinstance(t, torch.Tensor):
            continue
        tensors.append({
            "name": name,
            "dtype": dtype_name(t.dtype),
            "shape": list(t.shape),
            "strides": list(t.stride()),
            "storage_offset": t.storage_offset(),
            "contiguous": t.is_contiguous(),
            "numel": t.numel(),
            "hex": packed_hex(t),
        })
    meta = {k: describe(v) for k, v in loaded.items() if k != state_dict_key and not isinstance(v, torch.Tensor)}
    return {"format": fmt, "file": os.path.basename(path), "state_dict_key": state_dict_key,
            "tensors": tensors, "metadata": meta}


def save(obj, out_dir, name, legacy=False, protocol=2, state_dict_key=None):
    path = os.path.join(out_dir, name + ".pt")
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy, pickle_protocol=protocol)
    exp = expectation(obj, path, "legacy" if legacy else "zip", state_dict_key)
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(exp, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return path


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "checkpoint")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    dtypes = save(dtypes_obj(), out_dir, "dtypes")
    save(views_obj(), out_dir, "views")
    save(nested_obj(), out_dir, "nested", state_dict_key="state_dict")
    save(module_obj(), out_dir, "module")
    save(parameters_obj(), out_dir, "parameters", protocol=4)
    save(dtypes_obj(), out_dir, "dtypes_legacy", legacy=True)
    save(views_obj(), out_dir, "views_legacy", legacy=True)
    save(nested_obj(), out_dir, "nested_legacy", legacy=True, state_dict_key="state_dict")

    entries = read_zip_entries(dtypes)
    for variant, kwargs in [("dtypes_deflated", dict(deflate=True)), ("dtypes_zip64", dict(zip64=True))]:
        path = os.path.join(out_dir, variant + ".pt")
        write_zip(path, entries, **kwargs)
        exp = expectation(None, path, "zip")
        with open(os.path.join(out_dir, variant + ".json"), "w") as f:
            json.dump(exp, f, indent=1)
            f.write("\n")
    print("wrote fixtures to", os.path.abspath(out_dir))


if __name__ == "__main__":
    main()
