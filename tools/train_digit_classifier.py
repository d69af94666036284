#!/usr/bin/env python3
"""Train the small digit classifier that judges the shipped digits model.

The classifier is a multinomial logistic regression on scikit-learn's 8x8 `load_digits`
images, seen through the same 8x8 -> 16x16 -> 8x8 round trip that a generated 16x16 sample
goes through before it is judged:

    8x8 counts (0..16)  --to_16x16-->  16x16 image in [-1, 1] (dark ink on light ground)
    16x16 image          --to_8x8  -->  8x8 ink features in [0, 16] (2x2 average pooling)

Its weights, and ten real digits as 16x16 images (one per class, grey, [-1, 1], 4 decimals) with
their logits from this script ("examples"), are exported as JSON (Tests/Fixtures/digits/classifier.json) so a plain-Swift test
can apply it:  features f[64] = to_8x8(image);  z = (f - mean) / scale;  logits = W z + b;
prediction = argmax(logits).

Regenerate:  /tmp/venv/bin/python tools/train_digit_classifier.py
(also imported by tools/train_digits.py for `to_16x16`, `to_8x8` and the classifier itself).
"""

import argparse
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_JSON = os.path.join(HERE, "..", "Tests", "Fixtures", "digits", "classifier.json")


def to_16x16(counts8):
    """[N, 8, 8] ink counts in 0..16 -> [N, 16, 16] float32 image in [-1, 1], dark strokes on light.

    Bilinear 2x upsampling with half-pixel centres (PyTorch `align_corners=False`), edges clamped,
    which gives smooth strokes.
    """
    ink = np.asarray(counts8, dtype=np.float64) / 16.0
    n = ink.shape[0]
    out = np.empty((n, 16, 16), dtype=np.float64)
    # Source coordinate of each output pixel centre: (o + 0.5) / 2 - 0.5, clamped to [0, 7].
    src = np.clip((np.arange(16) + 0.5) / 2.0 - 0.5, 0.0, 7.0)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, 7)
    w = src - lo
    rows = ink[:, lo, :] * (1 - w)[None, :, None] + ink[:, hi, :] * w[None, :, None]
    out = rows[:, :, lo] * (1 - w)[None, None, :] + rows[:, :, hi] * w[None, None, :]
    return (1.0 - 2.0 * out).astype(np.float32)


def to_8x8(images16):
    """[N, 16, 16] (or [N, C, 16, 16], channels averaged) image in [-1, 1] -> [N, 64] ink features in [0, 16]."""
    x = np.asarray(images16, dtype=np.float64)
    if x.ndim == 4:
        x = x.mean(axis=1)
    ink = (1.0 - np.clip(x, -1.0, 1.0)) / 2.0 * 16.0
    pooled = ink.reshape(-1, 8, 2, 8, 2).mean(axis=(2, 4))
    return pooled.reshape(-1, 64)


class DigitClassifier:
    """The exported model: standardise, then a linear layer, then argmax."""

    def __init__(self, mean, scale, weights, bias):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)  # [10, 64]
        self.bias = np.asarray(bias, dtype=np.float64)  # [10]

    def logits(self, images16):
        z = (to_8x8(images16) - self.mean) / self.scale
        return z @ self.weights.T + self.bias

    def predict(self, images16):
        return self.logits(images16).argmax(axis=1)

    def to_json(self):
        return {
            "description": "Logistic regression on sklearn load_digits seen through the 8x8->16x16->8x8 round trip. "
            "features = 2x2 average of ink (1 - x) / 2 * 16 over the channel-averaged 16x16 image x in [-1, 1]; "
            "z = (features - mean) / scale; logits = weights z + bias (weights [10][64], row-major 8x8 features); "
            "prediction = argmax. Regenerate: /tmp/venv/bin/python tools/train_digit_classifier.py",
            "classes": 10,
            "features": 64,
            "mean": [round(float(v), 7) for v in self.mean],
            "scale": [round(float(v), 7) for v in self.scale],
            "weights": [[round(float(v), 7) for v in row] for row in self.weights],
            "bias": [round(float(v), 7) for v in self.bias],
        }

    @staticmethod
    def from_json(obj):
        return DigitClassifier(obj["mean"], obj["scale"], obj["weights"], obj["bias"])


def train(seed=0, verbose=True):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images16 = to_16x16(digits.images)
    feats = to_8x8(images16)
    labels = digits.target
    xtr, xte, ytr, yte = train_test_split(feats, labels, test_size=0.25, random_state=seed, stratify=labels)

    def fit(x, y):
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-6] = 1.0
        lr = LogisticRegression(C=0.5, max_iter=5000)
        lr.fit((x - mean) / scale, y)
        return DigitClassifier(mean, scale, lr.coef_, lr.intercept_)

    held_out = fit(xtr, ytr)
    z = (xte - held_out.mean) / held_out.scale
    acc = float(((z @ held_out.weights.T + held_out.bias).argmax(axis=1) == yte).mean())
    final = fit(feats, labels)  # exported model: all 1,797 images
    if verbose:
        print(f"held-out accuracy (25% split, trained on 75%): {acc:.4f}")
        print(f"training accuracy of the exported model (all data): "
              f"{float((final.predict(images16) == labels).mean()):.4f}")
    return final, acc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_JSON, help="where to write the classifier JSON")
    args = ap.parse_args()
    clf, acc = train()
    obj = clf.to_json()
    obj["held_out_accuracy"] = round(acc, 4)
    # A few real digits through to_16x16 with this script's logits, so the Swift port can be checked against it.
    from sklearn.datasets import load_digits

    digits = load_digits()
    picks = [int(np.nonzero(digits.target == d)[0][0]) for d in range(10)]
    images16 = np.round(to_16x16(digits.images[picks]), 4)
    logits = clf.logits(images16)
    obj["examples"] = [
        {"label": int(digits.target[i]), "image16": [float(v) for v in images16[k].reshape(-1)],
         "logits": [round(float(v), 5) for v in logits[k]]}
        for k, i in enumerate(picks)
    ]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(args.out)} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
