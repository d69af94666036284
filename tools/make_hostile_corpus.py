#!/usr/bin/env python3
"""Write the hostile checkpoint corpus: files that must be refused with a specific error.

Usage:  python3 tools/make_hostile_corpus.py [OUT_DIR]      (default: Tests/Fixtures/checkpoint/hostile)

Plain Python 3 (no torch needed). Every file is small; each holds exactly one offence on top of an
otherwise valid torch-style archive built here by hand (`valid_zip.pt` / `valid_legacy.pt` are the
untouched baselines and must load). The expected error of every file is asserted by
Tests/CheckpointTests/HostileCorpusTests.swift (one test per file) and listed in hostile/README.md.
Pickles are assembled opcode by opcode, so no Python object is ever pickled (or unpickled) here.
"""
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import zip_bytes  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Pickle opcodes, assembled by hand.

PROTO2 = b"\x80\x02"
MARK, STOP, TUPLE, DICT, LIST, APPEND, SETITEMS, BUILD, REDUCE = b"(", b".", b"t", b"d", b"l", b"a", b"u", b"b", b"R"
EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, NONE, NEWFALSE, NEWTRUE = b"}", b"]", b")", b"N", b"\x89", b"\x88"
BINPERSID = b"Q"


def uni(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def short_uni(s):
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def integer(i):
    if 0 <= i < 256:
        return b"K" + bytes([i])
    if 0 <= i < 65536:
        return b"M" + struct.pack("<H", i)
    if -(2 ** 31) <= i < 2 ** 31:
        return b"J" + struct.pack("<i", i)
    n = (i.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + i.to_bytes(n, "little", signed=True)


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tup(items):
    return MARK + b"".join(items) + TUPLE


def pid(storage_cls, key, numel, legacy=False):
    fields = [uni("storage"), glob("torch", storage_cls), uni(key), uni("cpu"), integer(numel)]
    if legacy:
        fields.append(NONE)
    return tup(fields) + BINPERSID


def tensor(storage_cls, key, numel, offset, shape, stride, legacy=False, nargs=6):
    args = [pid(storage_cls, key, numel, legacy), integer(offset), tup([integer(d) for d in shape]),
            tup([integer(s) for s in stride]), NEWFALSE, glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE]
    return glob("torch._utils", "_rebuild_tensor_v2") + tup(args[:nargs]) + REDUCE


def state_dict(items):
    """items: list of (key, ops producing the value)."""
    return PROTO2 + EMPTY_DICT + MARK + b"".join(uni(k) + v for k, v in items) + SETITEMS + STOP


def floats(*xs):
    return struct.pack("<%df" % len(xs), *xs)


# A small valid state dict: w [2,3] f32 on storage "0", b [3] f32 on storage "1".
W = floats(1, 2, 3, 4, 5, 6)
B = floats(0.5, -0.5, 2)
VALID_PICKLE = state_dict([("w", tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1])),
                           ("b", tensor("FloatStorage", "1", 3, 0, [3], [1]))])


def archive(pickle, storages=None, prefix="h", extra=(), **zip_kwargs):
    """A torch-like zip: <prefix>/data.pkl, <prefix>/data/<key>, version and byteorder records."""
    if storages is None:
        storages = {"0": W, "1": B}
    entries = [(f"{prefix}/data.pkl", pickle)]
    entries += [(f"{prefix}/{n}", d) for n, d in extra]
    entries += [(f"{prefix}/data/{k}", v) for k, v in storages.items()]
    entries += [(f"{prefix}/version", b"3\n"), (f"{prefix}/byteorder", b"little")]
    return zip_bytes(entries, **zip_kwargs)


def pickle_only(ops):
    """A zip whose pickle is `ops` (which needs no storages)."""
    return archive(PROTO2 + ops, storages={})


# ---------------------------------------------------------------------------------------------
# Zip structure helpers for patching a finished archive.

def find_eocd(z):
    return z.rfind(b"PK\x05\x06")


def central_entries(z):
    """Offsets of central directory records, in order."""
    e = find_eocd(z)
    loc = z.rfind(b"PK\x06\x07", 0, e)
    if loc >= 0:
        z64 = struct.unpack_from("<Q", z, loc + 8)[0]
        n, cd_size, cd_off = struct.unpack_from("<QQQ", z, z64 + 32)
    else:
        n, cd_size, cd_off = struct.unpack_from("<HII", z, e + 10)
    out, p = [], cd_off
    for _ in range(n):
        out.append(p)
        nl, el, cl = struct.unpack_from("<HHH", z, p + 28)
        p += 46 + nl + el + cl
    return out


def central_name(z, p):
    nl = struct.unpack_from("<H", z, p + 28)[0]
    return z[p + 46:p + 46 + nl].decode()


def central_of(z, name):
    for p in central_entries(z):
        if central_name(z, p) == name:
            return p
    raise KeyError(name)


def local_of(z, name):
    return struct.unpack_from("<I", z, central_of(z, name) + 42)[0]


def patch(z, offset, fmt, *values):
    b = bytearray(z)
    struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


def data_offset(z, name):
    l = local_of(z, name)
    nl, el = struct.unpack_from("<HH", z, l + 26)
    return l + 30 + nl + el


# ---------------------------------------------------------------------------------------------
# Legacy streams.

LEGACY_MAGIC = PROTO2 + b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + STOP
LEGACY_PROTOCOL = PROTO2 + integer(1001) + STOP


def legacy_sys_info(little=True):
    return (PROTO2 + EMPTY_DICT + MARK + uni("protocol_version") + integer(1001) + uni("little_endian")
            + (NEWTRUE if little else NEWFALSE) + uni("type_sizes") + EMPTY_DICT + MARK + uni("short") + integer(2)
            + uni("int") + integer(4) + uni("long") + integer(4) + SETITEMS + SETITEMS + STOP)


def legacy(obj_pickle=None, keys=("0", "1"), storages=None, magic=LEGACY_MAGIC, protocol=LEGACY_PROTOCOL, little=True):
    if obj_pickle is None:
        obj_pickle = state_dict([("w", tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1], legacy=True)),
                                 ("b", tensor("FloatStorage", "1", 3, 0, [3], [1], legacy=True))])
    if storages is None:
        storages = [(6, W), (3, B)]
    key_list = PROTO2 + EMPTY_LIST + MARK + b"".join(uni(k) for k in keys) + b"e" + STOP
    raw = b"".join(struct.pack("<q", n) + d for n, d in storages)
    return magic + protocol + legacy_sys_info(little) + obj_pickle + key_list + raw


# ---------------------------------------------------------------------------------------------
# The corpus: name -> bytes. Expected errors are in HostileCorpusTests.swift and README.md.

def corpus():
    c = {}
    c["valid_zip"] = archive(VALID_PICKLE)
    c["valid_legacy"] = legacy()

    # --- code execution attempts -----------------------------------------------------------
    c["os_system_reduce"] = pickle_only(glob("os", "system") + tup([uni("echo pwned")]) + REDUCE + STOP)
    c["posix_system_reduce"] = pickle_only(glob("posix", "system") + tup([uni("echo pwned")]) + REDUCE + STOP)
    c["builtins_eval"] = pickle_only(glob("builtins", "eval") + tup([uni("1+1")]) + REDUCE + STOP)
    c["subprocess_popen"] = pickle_only(glob("subprocess", "Popen") + tup([uni("ls")]) + REDUCE + STOP)
    c["stack_global_os_system"] = pickle_only(short_uni("os") + short_uni("system") + b"\x93"
                                              + tup([uni("id")]) + REDUCE + STOP)
    c["stack_global_non_string"] = pickle_only(integer(1) + integer(2) + b"\x93" + STOP)
    c["inst_opcode"] = pickle_only(MARK + uni("ls") + b"ios\nsystem\n" + STOP)
    c["obj_opcode"] = pickle_only(MARK + glob("collections", "OrderedDict") + b"o" + STOP)
    c["newobj_opcode"] = pickle_only(glob("collections", "OrderedDict") + EMPTY_TUPLE + b"\x81" + STOP)
    c["newobj_ex_opcode"] = pickle_only(glob("collections", "OrderedDict") + EMPTY_TUPLE + EMPTY_DICT + b"\x92" + STOP)
    c["ext1_opcode"] = pickle_only(b"\x82\x01" + STOP)
    c["text_persid"] = pickle_only(b"Pstorage\n" + STOP)
    c["next_buffer"] = pickle_only(b"\x97" + STOP)
    c["codecs_encode_bytes"] = pickle_only(glob("_codecs", "encode") + tup([uni("abc"), uni("latin1")]) + REDUCE + STOP)
    c["build_on_list"] = pickle_only(EMPTY_LIST + EMPTY_DICT + BUILD + STOP)
    c["build_on_tensor"] = archive(PROTO2 + tensor("FloatStorage", "0", 6, 0, [6], [1]) + EMPTY_DICT + BUILD + STOP)
    c["reduce_storage_class"] = pickle_only(glob("torch", "FloatStorage") + EMPTY_TUPLE + REDUCE + STOP)
    c["reduce_non_global"] = pickle_only(EMPTY_LIST + EMPTY_TUPLE + REDUCE + STOP)
    c["rebuild_wrong_arity"] = archive(PROTO2 + glob("torch._utils", "_rebuild_tensor_v2")
                                       + tup([pid("FloatStorage", "0", 6), integer(0), tup([integer(6)])]) + REDUCE + STOP)

    # --- container and stack abuse -------------------------------------------------------------
    c["setitems_on_list"] = pickle_only(EMPTY_LIST + MARK + uni("a") + uni("b") + SETITEMS + STOP)
    c["append_on_dict"] = pickle_only(EMPTY_DICT + NONE + APPEND + STOP)
    c["unhashable_key"] = pickle_only(EMPTY_DICT + EMPTY_LIST + NONE + b"s" + STOP)
    c["memo_get_missing"] = pickle_only(b"h\x05" + STOP)
    c["memo_self_cycle"] = pickle_only(EMPTY_LIST + b"q\x00" + b"h\x00" + APPEND + STOP)
    laughs = EMPTY_LIST + b"q\x00"
    for i in range(1, 41):   # L_i = [L_{i-1}, L_{i-1}]: 2**40 nodes if expanded
        laughs += EMPTY_LIST + b"h" + bytes([i - 1]) + APPEND + b"h" + bytes([i - 1]) + APPEND + b"q" + bytes([i])
    c["memo_billion_laughs"] = pickle_only(laughs + STOP)
    c["deep_nesting"] = archive(PROTO2 + EMPTY_LIST * 100_000 + APPEND * 99_999 + STOP, storages={},
                                deflate={"h/data.pkl"})
    c["stack_underflow"] = pickle_only(b"\x86" + STOP)                  # TUPLE2 on an empty stack
    c["underflow_below_mark"] = pickle_only(EMPTY_LIST + MARK + APPEND + STOP)
    c["missing_mark"] = pickle_only(NONE + TUPLE + STOP)
    c["stack_bomb"] = archive(PROTO2 + NONE * ((1 << 20) + 1) + STOP, storages={}, deflate={"h/data.pkl"})
    c["truncated_opcode"] = archive(PROTO2 + b"J\x01\x02", storages={})  # BININT cut short
    c["missing_stop"] = archive(PROTO2 + NONE, storages={})
    c["unknown_opcode"] = pickle_only(b"\xff" + STOP)
    c["protocol_6"] = archive(b"\x80\x06" + NONE + STOP, storages={})

    # --- huge declared lengths -----------------------------------------------------------------
    c["huge_binunicode"] = pickle_only(b"X\xff\xff\xff\xff" + b"abc" + STOP)
    c["huge_binbytes8"] = pickle_only(b"\x8e" + struct.pack("<Q", 1 << 62) + b"abc" + STOP)
    c["huge_frame"] = archive(b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + NONE + STOP, storages={})
    c["huge_long4"] = pickle_only(b"\x8b" + struct.pack("<i", 2 ** 31 - 1) + b"\x01" + STOP)
    c["huge_decimal_long"] = pickle_only(b"L" + b"9" * 5000 + b"L\n" + STOP)
    c["bad_utf8"] = pickle_only(b"\x8c\x02\xff\xfe" + STOP)
    c["bad_persistent_id"] = pickle_only(tup([uni("storage"), uni("not a class"), uni("0"), uni("cpu"), integer(1)])
                                         + BINPERSID + STOP)

    # --- tensors and storages ------------------------------------------------------------------
    c["storage_numel_mismatch"] = archive(state_dict([("w", tensor("FloatStorage", "0", 100, 0, [6], [1]))]),
                                          storages={"0": W})
    c["view_out_of_bounds"] = archive(state_dict([("w", tensor("FloatStorage", "0", 6, 0, [10], [1]))]),
                                      storages={"0": W})
    c["view_offset_out_of_bounds"] = archive(state_dict([("w", tensor("FloatStorage", "0", 6, 4, [2, 2], [2, 1]))]),
                                             storages={"0": W})
    c["view_stride_overflow"] = archive(state_dict([("w", tensor("FloatStorage", "0", 6, 0, [3, 2], [2 ** 62, 1]))]),
                                        storages={"0": W})
    c["negative_size"] = archive(state_dict([("w", tensor("FloatStorage", "0", 6, 0, [-2, 3], [3, 1]))]),
                                 storages={"0": W})
    c["missing_storage"] = archive(state_dict([("w", tensor("FloatStorage", "7", 6, 0, [6], [1]))]), storages={"0": W})
    c["storage_dtype_conflict"] = archive(state_dict([("w", tensor("FloatStorage", "0", 6, 0, [6], [1])),
                                                      ("h", tensor("HalfStorage", "0", 12, 0, [12], [1]))]),
                                          storages={"0": W})
    c["duplicate_tensor_name"] = archive(PROTO2 + EMPTY_DICT + MARK
                                         + uni("a.b") + tensor("FloatStorage", "0", 6, 0, [6], [1])
                                         + uni("a") + EMPTY_DICT + uni("b") + tensor("FloatStorage", "1", 3, 0, [3], [1]) + b"s"
                                         + SETITEMS + STOP)

    # --- zip container -------------------------------------------------------------------------
    valid = c["valid_zip"]
    c["zip_truncated"] = valid[: len(valid) // 2]
    plain = archive(VALID_PICKLE)          # no ZIP64 records: easier to patch the classic record
    pe = find_eocd(plain)
    c["zip_cd_out_of_range"] = patch(plain, pe + 16, "<I", len(plain) + 1000)
    c["zip_entry_count_impossible"] = patch(patch(plain, pe + 8, "<H", 5000), pe + 10, "<H", 5000)
    c["zip_bad_cd_signature"] = patch(plain, central_entries(plain)[0], "<I", 0x12345678)
    c["zip_wrong_crc"] = patch(plain, central_of(plain, "h/data/0") + 16, "<I", 0xDEADBEEF)
    c["zip_duplicate_names"] = archive(VALID_PICKLE, extra=[("data/0", W)])
    c["zip_encrypted_flag"] = patch(plain, central_of(plain, "h/data/1") + 8, "<H", 0x09)
    c["zip_unknown_compression"] = patch(patch(plain, central_of(plain, "h/data/1") + 10, "<H", 12),
                                         local_of(plain, "h/data/1") + 8, "<H", 12)
    c["zip_local_name_mismatch"] = patch(plain, local_of(plain, "h/data/1") + 30, "<B", ord("X"))
    c["zip_local_method_mismatch"] = patch(plain, local_of(plain, "h/data/1") + 8, "<H", 8)
    c["zip_local_offset_out_of_range"] = patch(plain, central_of(plain, "h/data/1") + 42, "<I", len(plain) - 10)
    c["zip_multi_disk"] = patch(plain, pe + 4, "<H", 1)
    c["zip_missing_pickle"] = zip_bytes([("h/data/0", W), ("h/version", b"3\n")])
    c["zip_big_endian"] = zip_bytes([("h/data.pkl", VALID_PICKLE), ("h/data/0", W), ("h/data/1", B),
                                     ("h/byteorder", b"big")])
    c["zip_stored_size_mismatch"] = patch(plain, central_of(plain, "h/data.pkl") + 24, "<I", 11)
    v64 = archive(VALID_PICKLE, zip64=True)
    e64 = find_eocd(v64)
    loc = v64.rfind(b"PK\x06\x07", 0, e64)
    c["zip64_inconsistent_count"] = patch(v64, e64 + 10, "<H", 7)   # classic says 7 entries, ZIP64 record says 5
    nz64 = zip_bytes([("h/data.pkl", VALID_PICKLE), ("h/data/0", W), ("h/data/1", B)], zip64=True)
    p0 = central_of(nz64, "h/data/0")
    # Replace the ZIP64 extra's id so the 0xFFFFFFFF markers have nothing to resolve them.
    c["zip64_missing_extra"] = patch(nz64, p0 + 46 + len("h/data/0"), "<H", 0x7777)
    c["zip64_short_extra"] = patch(nz64, p0 + 46 + len("h/data/0") + 2, "<H", 8)   # claims 8 of the 24 bytes
    c["zip64_bad_record_offset"] = patch(v64, loc + 8, "<Q", len(v64) * 4)

    # deflate: corrupt stream, bomb (declares small, inflates big), impossible declared size, short stream
    dz = archive(VALID_PICKLE, deflate=True)
    c["deflate_corrupt_stream"] = patch(dz, data_offset(dz, "h/data/0"), "<I", 0xFFFFFFFF)
    bomb_payload = b"\x00" * (16 << 20)            # 16 MiB of zeros, ~16 KiB deflated
    # The pickle entry itself is the bomb: a 16 MiB stream whose central record declares 64 bytes (CRC 0).
    bomb = zip_bytes([("h/data.pkl", bomb_payload), ("h/version", b"3\n")], deflate={"h/data.pkl"})
    c["deflate_bomb"] = patch(patch(bomb, central_of(bomb, "h/data.pkl") + 24, "<I", 64),
                              central_of(bomb, "h/data.pkl") + 16, "<I", 0)
    small = zip_bytes([("h/data.pkl", VALID_PICKLE), ("h/data/0", W), ("h/data/1", B)], deflate=True)
    c["deflate_impossible_size"] = patch(small, central_of(small, "h/data.pkl") + 24, "<I", 0xFFFFFFF0)
    c["deflate_short_stream"] = patch(patch(small, central_of(small, "h/data.pkl") + 24, "<I", len(VALID_PICKLE) + 5),
                                      central_of(small, "h/data.pkl") + 16, "<I", 0)

    # --- legacy stream -------------------------------------------------------------------------
    c["legacy_bad_magic"] = legacy(magic=PROTO2 + integer(12345) + STOP)
    c["legacy_bad_protocol"] = legacy(protocol=PROTO2 + integer(1000) + STOP)
    c["legacy_big_endian"] = legacy(little=False)
    c["legacy_truncated_storage"] = legacy()[:-5]
    c["legacy_numel_mismatch"] = legacy(storages=[(7, W), (3, B)])
    c["legacy_unreferenced_key"] = legacy(keys=("0", "1", "2"), storages=[(6, W), (3, B), (1, floats(0))])
    c["legacy_missing_storage"] = legacy(keys=("0",), storages=[(6, W)])

    # --- not a checkpoint ----------------------------------------------------------------------
    c["not_a_checkpoint"] = b"#!/bin/sh\nrm -rf /\n"
    c["empty_file"] = b""
    return {k: v for k, v in c.items() if v is not None}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures",
                                                             "checkpoint", "hostile")
    os.makedirs(out, exist_ok=True)
    items = corpus()
    for name, data in items.items():
        with open(os.path.join(out, name + ".pt"), "wb") as f:
            f.write(data)
    total = sum(len(v) for v in items.values())
    print(f"wrote {len(items)} files ({total:,} bytes) to {os.path.abspath(out)}")


if __name__ == "__main__":
    main()
