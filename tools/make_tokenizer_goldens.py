#!/usr/bin/env python3
"""Goldens for our tokenizers (Sources/GlideModel/Tokenizer), made with the genuine glide_text2im.

Usage:
  python tools/make_tokenizer_goldens.py [--out Tests/Fixtures/tokenizer]
      writes gpt2.json and clip.json: for every prompt below, the reference's token ids, padded ids and
      mask (GPT-2, text_ctx 128 as the base model) or padded ids and length (CLIP, max_text_len 77).
  python tools/make_tokenizer_goldens.py --swift-tables Sources/GlideModel/Tokenizer/TextCleanupTables.swift
      regenerates the data tables the CLIP text cleanup uses (ftfy's width map, Python's HTML5 entities).
Needs glide_text2im (pip install -e path/to/glide-text2im), which brings regex and ftfy.
"""
import argparse
import html.entities
import json
import os
import random

from glide_text2im.tokenizer.bpe import get_encoder
from glide_text2im.tokenizer.simple_tokenizer import SimpleTokenizer

PROMPTS = [
    "",
    "an oil painting of a corgi",
    "An Oil Painting Of A CORGI",
    "a crayon drawing of a space elevator",
    "don't stop, it's what we'd've wanted; they'll say I'm fine",
    "DON'T SHOUT: IT'S LOUD",
    "rock'n'roll 'quoted' words' 'sea",
    "  leading and trailing spaces  ",
    "multiple   spaces\tand\ttabs\nand\n\nnewlines",
    "ends with newline\n",
    "\u00a0non-breaking\u00a0space and\u3000ideographic space",
    "numbers 12345 3.14159 1,000,000 and 2nd 3rd 42nd",
    "unicode: café naïve résumé Ærøskøbing Straße ĲSSEL",
    "ΟΔΥΣΣΕΥΣ and ΣΊΣΥΦΟΣ sail the sea",
    "İstanbul and DŽungla",
    "日本語のテキスト、東京タワー",
    "中文提示：一只可爱的猫",
    "한국어 프롬프트 고양이",
    "emoji 🐶🐱 a dog 🐕‍🦺 and flags 🇫🇷🇯🇵 and 👍🏽",
    "math ∑ ∫ √2 ≈ 1.414 and arrows → ⇒",
    "punctuation!!! ??? ... --- ((( ))) [x] {y} <z> @#$%^&*_+=|\\/",
    "curly “quotes” and ‘single’ ones — dash – en",
    "ﬁne ﬂour ligatures and ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ ０１２",
    "html &amp; entities &lt;b&gt; &eacute; &#233; &#x263A; &copy 2024",
    "P&EACUTE;REZ BUNDESSTRA&SZLIG;E &NTILDE; &nTILDE; &AMP;amp; &amp;amp;lt; &Jscr;ohn",
    "a <b> tag &amp; &lt;i&gt; on a line with a bracket",
    "control\x07chars\x1b[31mred\x1b[0m and zero\u200bwidth",
    "<|endoftext|> inside text <|startoftext|>",
    "Ⅻ roman numeral ½ fraction ² superscript",
    "combining e\u0301 and precomposed é",
    "arabic النص العربي and hebrew טקסט",
    "thai ภาษาไทย devanagari हिन्दी",
    "a" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    " ".join(["a photo of a cat wearing a tiny hat on the moon"] * 20),
    "🦄" * 50,
    "x's y't z're w've v'm u'll t'd",
    "'s's'ss",
    "tab\tfollowed and\r\ncrlf",
    "\t\t",
    "   ",
]


# Random strings over pools of tricky characters (scripts, spaces, combining marks, emoji, entities,
# controls, ligatures, fullwidth forms). CLIP cases skip strings with Latin-1/cp1252 characters, where
# ftfy's mojibake repair (not reimplemented, see Sources/GlideModel/Tokenizer/README.md) may act.
FUZZ_POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ",
    "  \t\n\r\x0b\x0c\x85\xa0\u2000\u3000\u2028", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "'sltdmvre",
    "\u00e9\u00e8\u00ea\u00eb\u00c0\u00c1\u00c7\u00f1\u00f6\u00f8\u00df\u00ff\u0132\u0133\u0149\u01c4\u01c5\u01c6\ufb01\ufb02\ufb00\ufb03",
    "\u0391\u0392\u0393\u03a3\u03c3\u03c2\u039f\u0394\u03a5\u0395", "\u0410\u0411\u0412\u0430\u0431\u0432",
    "\u65e5\u672c\u8a9e\u4e2d\u6587\ud55c\uad6d\u30c6\u30b9", "\U0001f436\U0001f431\U0001f984\U0001f44d\U0001f3fd\U0001f1eb\U0001f1f7\u200d\ufe0f",
    "\u0301\u0308\u0345\u200b\u200c", "\u201c\u201d\u2018\u2019\u201a\u201e\u2039\u203a\u2014\u2013\u2026",
    "\uff21\uff22\uff41\uff42\uff10\uff11\uff01\uff1f\u3000\uff76\uff80\uff85", "\u00bd\u00b2\u00b3\u216b\u2460\u2474",
    "&amp;&lt;&gt;&quot;&#39;&#x41;&copy;&eacute;&nbsp;&notin;&", "\x00\x01\x07\x1b[31m\x7f\x80\x93\x94\x9d",
    "\u0130\u0131\u1e9e\u1f88\u2126\u212a\u212b",
]
_CP1252 = set("\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d\u2018\u2019"
              "\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178")


def fuzz_prompts(count=300, seed=5, clip=False):
    rng = random.Random(seed)
    pools = FUZZ_POOLS
    if clip:
        pools = ["".join(c for c in p if clip_safe(c)) for p in FUZZ_POOLS]
        pools = [p for p in pools if p]
    out = []
    for _ in range(count):
        k = rng.randint(1, 40)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(k)))
    return out


def clip_safe(text):
    return not any(0x80 <= ord(c) <= 0xFF or c in _CP1252 for c in text)


def gpt2_goldens(text_ctx=128):
    enc = get_encoder()
    out = []
    for p in PROMPTS:
        toks = enc.encode(p)
        padded, mask = enc.padded_tokens_and_mask(toks, text_ctx)
        out.append(dict(text=p, tokens=toks, padded=padded, mask=mask))
    fuzz = [dict(text=p, tokens=enc.encode(p)) for p in fuzz_prompts()]
    return dict(text_ctx=text_ctx, n_vocab=enc.n_vocab, end_token=enc.end_token, cases=out, fuzz=fuzz)


def clip_goldens(text_ctx=77):
    tok = SimpleTokenizer()
    out = []
    for p in PROMPTS:
        toks = tok.encode(p)
        padded, length = tok.padded_tokens_and_len(toks, text_ctx)
        out.append(dict(text=p, tokens=toks, padded=padded, len=length))
    fuzz = [dict(text=p, tokens=tok.encode(p)) for p in fuzz_prompts(clip=True)]
    return dict(text_ctx=text_ctx, start_token=tok.start_token, end_token=tok.end_token, cases=out, fuzz=fuzz)


MOJIBAKE_SOURCES = [
    "café au lait", "crème brûlée on a plate", "a naïve painting of a château", "El niño y la niña",
    "¿Dónde está la biblioteca?", "Straße in München", "über alles", "São Paulo at night", "Ångström units",
    "don’t stop believing", "“quoted” words – and dashes — too…", "a 90° angle", "£5 and €10", "©2021 ™ ®",
    "smörgåsbord", "Zoë’s façade", "piñata party 🎉", "œuvre d’art", "résumé", "Ça va, Éric?",
    "Ελληνικά", "日本語のテキスト", "a corgi ❤ in a field", "naïve café — déjà vu",
]


def mojibake_cases():
    """Prompts whose UTF-8 was decoded as Latin-1 or (sloppy) Windows-1252, once or twice, plus the clean
    originals (which must stay unchanged) and 300 random strings rich in Latin-1 / Windows-1252 characters."""
    import ftfy.bad_codecs  # noqa: F401  (registers sloppy-windows-1252)

    prompts = list(MOJIBAKE_SOURCES)
    for src in MOJIBAKE_SOURCES:
        for codec in ("latin-1", "sloppy-windows-1252"):
            try:
                once = src.encode("utf-8").decode(codec)
            except UnicodeDecodeError:
                continue
            prompts.append(once)
            try:
                prompts.append(once.encode("utf-8").decode(codec))
            except UnicodeDecodeError:
                pass
    seen, unique = set(), []
    for p in prompts:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def clip_mojibake_goldens():
    tok = SimpleTokenizer()
    cases = [dict(text=p, tokens=tok.encode(p)) for p in mojibake_cases()]
    fuzz = [dict(text=p, tokens=tok.encode(p)) for p in fuzz_prompts(count=300, seed=11)]
    return dict(cases=cases, fuzz=fuzz)


def swift_tables(path):
    from ftfy.chardata import WIDTH_MAP

    def esc(s):
        return "".join(c if (32 <= ord(c) < 127 and c not in '\\"') else "\\u{%x}" % ord(c) for c in s)

    width = "".join(f"{k:x}={esc(v if isinstance(v, str) else chr(v))}\n" for k, v in sorted(WIDTH_MAP.items()))
    ents = "".join(f"{esc(k)}={esc(v)}\n" for k, v in sorted(html.entities.html5.items()))
    with open(path, "w") as f:
        f.write("// Generated by tools/make_tokenizer_goldens.py --swift-tables; do not edit.\n")
        f.write("// ftfy.chardata.WIDTH_MAP (hex code point = replacement) and Python's html.entities.html5\n")
        f.write("// (name = replacement), one entry per line.\n\n")
        f.write("enum TextCleanupTables {\n")
        f.write(f'    static let widthMap = """\n{width}"""\n\n')
        f.write(f'    static let html5Entities = """\n{ents}"""\n')
        f.write("}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/tokenizer")
    ap.add_argument("--swift-tables")
    ap.add_argument("--mojibake-only", action="store_true", help="only write clip_mojibake.json")
    a = ap.parse_args()
    if a.swift_tables:
        swift_tables(a.swift_tables)
        return
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "clip_mojibake.json"), "w") as f:
        json.dump(clip_mojibake_goldens(), f, ensure_ascii=True)
    if a.mojibake_only:
        return
    with open(os.path.join(a.out, "gpt2.json"), "w") as f:
        json.dump(gpt2_goldens(), f, ensure_ascii=True)
    with open(os.path.join(a.out, "clip.json"), "w") as f:
        json.dump(clip_goldens(), f, ensure_ascii=True)
    print(f"wrote {len(PROMPTS)} prompts to {a.out}")


if __name__ == "__main__":
    main()
