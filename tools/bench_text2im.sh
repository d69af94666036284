#!/bin/sh
# Whole text -> 64x64 -> 256x256 runs (the text2im notebook's recipe: 100 guided DDPM steps at guidance 3,
# then the upsampler over fast27 with DDIM) for each weight type, and the genuine reference code on the same
# weights, one after the other, each whole process under /usr/bin/time -v. Prints one line per run:
#   run  wall_s  user_s  sys_s  peak_rss_MB
# Each glide run's phases (`glide sample --timings`: loading, hashing, text, each stage's first step and median
# step, writing; wall and CPU) are in $OUT/glide-$T.time above the /usr/bin/time -v lines.
#
# Usage (checkpoints from tools/make_fullsize_checkpoint.py, converted with `glide convert`):
#   tools/bench_text2im.sh [DIR] [TYPES] [TORCH]
#     DIR    holds base-$T.glw, upsample-$T.glw, base.pt, upsample.pt   (default /tmp/glide-ckpts)
#     TYPES  weight types to run                                            (default "int8 f16 bf16 f32")
#     TORCH  1 to also run the reference (tools/bench_torch_model.py)      (default 1)
# Environment: GLIDE (default .build/release/glide), PYTHON (default /tmp/venv/bin/python),
#   VOCAB (default ../shared/vocab), THREADS (default 2), OUT (images and logs, default /tmp/bench-text2im).
set -eu
DIR=${1:-/tmp/glide-ckpts}
TYPES=${2:-"int8 f16 bf16 f32"}
TORCH=${3:-1}
GLIDE=${GLIDE:-.build/release/glide}
PYTHON=${PYTHON:-/tmp/venv/bin/python}
VOCAB=${VOCAB:-../shared/vocab}
THREADS=${THREADS:-2}
OUT=${OUT:-/tmp/bench-text2im}
PROMPT="an oil painting of a corgi"   # the same prompt as tools/bench_torch_model.py
mkdir -p "$OUT"

report() {   # name, /usr/bin/time -v log
    awk -v name="$1" '
        /Elapsed \(wall clock\)/ { n = split($NF, p, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + p[i] }
        /User time/ { u = $NF } /System time/ { s = $NF } /Maximum resident/ { r = $NF / 1024 }
        END { printf "%-14s %8.1f %8.1f %7.1f %9.0f\n", name, w, u, s, r }' "$2"
}

echo "run              wall_s   user_s   sys_s  peak_MB   ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1 /proc/loadavg), threads $THREADS)"
for T in $TYPES; do
    /usr/bin/time -v "$GLIDE" sample "$PROMPT" --model "$DIR/base-$T.glw" --upsampler "$DIR/upsample-$T.glw" \
        --vocab "$VOCAB" --seed 0 --threads "$THREADS" --quiet --timings -o "$OUT/glide-$T.png" 2> "$OUT/glide-$T.time"
    report "glide $T" "$OUT/glide-$T.time"
done
if [ "$TORCH" = 1 ]; then
    /usr/bin/time -v "$PYTHON" tools/bench_torch_model.py --run text2im --base "$DIR/base.pt" \
        --upsample "$DIR/upsample.pt" --threads "$THREADS" --quiet --json --save "$OUT/torch" \
        > "$OUT/torch.json" 2> "$OUT/torch.time"
    report "pytorch f32" "$OUT/torch.time"
fi
