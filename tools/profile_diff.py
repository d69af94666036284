#!/usr/bin/env python3
"""Compare per-op profiles written by `glide bench step --profile --json` (no PyTorch needed).

    python3 tools/profile_diff.py before.json after.json [--kinds]

Prints the per-step seconds of each overview group (and with --kinds, of each op kind summed over shapes)
side by side, with the difference. Both files must profile the same model and shapes for the rows to mean
the same work.
"""
import argparse
import json


def load(path):
    with open(path) as f:
        report = json.load(f)
    return report, report["profile"]


def kinds(profile):
    out = {}
    for op in profile["ops"]:
        own = op["self_seconds"] + op["pack_activation_seconds"] + op["pack_weight_seconds"]
        out[op["kind"]] = out.get(op["kind"], 0.0) + own
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--kinds", action="store_true", help="also compare per op kind")
    args = parser.parse_args()
    rb, pb = load(args.before)
    ra, pa = load(args.after)
    print(f"{rb['model']} -> {ra['model']}; {pb['clock']} clock, {pb['threads']} / {pa['threads']} thread(s)")
    print(f"| {'group':52} | before s | after s | change |")
    print(f"|{'-' * 54}|---------:|--------:|-------:|")
    rows = list(pb["groups"].items())
    for name, before in rows:
        after = pa["groups"].get(name, 0.0)
        print(f"| {name:52} | {before:8.3f} | {after:7.3f} | {after - before:+6.3f} |")
    mb, ma = pb["measured_seconds_per_step"], pa["measured_seconds_per_step"]
    print(f"| {'measured step':52} | {mb:8.3f} | {ma:7.3f} | {ma - mb:+6.3f} |")
    if args.kinds:
        kb, ka = kinds(pb), kinds(pa)
        print()
        print(f"| {'op kind (self + packing)':52} | before s | after s | change |")
        print(f"|{'-' * 54}|---------:|--------:|-------:|")
        for k in sorted(set(kb) | set(ka), key=lambda k: -max(kb.get(k, 0), ka.get(k, 0))):
            b, a = kb.get(k, 0.0), ka.get(k, 0.0)
            print(f"| {k:52} | {b:8.3f} | {a:7.3f} | {a - b:+6.3f} |")


if __name__ == "__main__":
    main()
