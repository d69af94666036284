#!/bin/bash
# Step times side by side: PyTorch f32 running the reference code (tools/bench_torch_model.py) and
# `glide bench step` per weight type, alternated (PyTorch, then each type) for ROUNDS rounds, 2 threads;
# prints each round's medians and PyTorch's step over ours in the same round, and peak RSS.
# Usage: tools/bench_steps_vs_torch.sh base|upsample ROUNDS STEPS ["f32 bf16 int8"]
# Env: CAP (our GLIDE_CPU level, default avx512), TORCH_ENV (e.g. "ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2"),
#      GLIDE (default .build/release/glide), OUT (json files, default /tmp/bench-steps),
#      DIR (converted files {base,upsample}-TYPE.glw, default /tmp/glide-ckpts),
#      TORCH_WARM=1 (also run PyTorch each round with glibc's allocator kept warm: no mmap/munmap of its large
#      activation tensors per step, which costs it page faults in a short run but not in its long sampling loop;
#      ratios are printed against both).
# Models: /tmp/glide-ckpts/{base,upsample}.pt (what PyTorch runs) and their converted {base,upsample}-TYPE.glw.
M=$1; R=$2; S=$3; TYPES=${4:-"f32 bf16 int8"}
G=${GLIDE:-.build/release/glide}; OUT=${OUT:-/tmp/bench-steps}; DIR=${DIR:-/tmp/glide-ckpts}; mkdir -p $OUT
TORCH_ENV=${TORCH_ENV:-X=1}
item=$([ $M = base ] && echo base-step || echo upsample-step)
for r in $(seq 1 $R); do
  env $TORCH_ENV /tmp/venv/bin/python tools/bench_torch_model.py --run $item --steps $S --warmup 1 --threads 2 --json > $OUT/torch-$M-${CAP:-avx512}-r$r.json 2>/dev/null
  if [ "${TORCH_WARM:-0}" = 1 ]; then
    env $TORCH_ENV MALLOC_MMAP_THRESHOLD_=8589934592 MALLOC_TRIM_THRESHOLD_=8589934592 MALLOC_TOP_PAD_=268435456 \
      /tmp/venv/bin/python tools/bench_torch_model.py --run $item --steps $S --warmup 1 --threads 2 --json > $OUT/torchwarm-$M-${CAP:-avx512}-r$r.json 2>/dev/null
  else
    rm -f $OUT/torchwarm-$M-${CAP:-avx512}-r$r.json
  fi
  for t in $TYPES; do
    GLIDE_CPU=${CAP:-avx512} $G bench step --model $DIR/$M-$t.glw --steps $S --warmup 1 --threads 2 --json --quiet > $OUT/glide-$M-$t-${CAP:-avx512}-r$r.json
  done
done
/tmp/venv/bin/python - "$M" "$R" "${CAP:-avx512}" "$OUT" $TYPES <<'PY'
import json,sys,statistics as st
M,R,cap,O=sys.argv[1],int(sys.argv[2]),sys.argv[3],sys.argv[4]; types=sys.argv[5:]
def load(p):
    try: return json.load(open(p))
    except Exception as e: return None
tor=[load(f'{O}/torch-{M}-{cap}-r{r}.json') for r in range(1,R+1)]
key='base_step' if M=='base' else 'upsample_step'
def tstep(j):
    return j['results'].get(key.replace('_','-')) if j else None
print(f"{M} (cap {cap}): PyTorch f32 medians per round:", [round(tstep(j)['median_seconds'],3) for j in tor if tstep(j)])
warm=[load(f'{O}/torchwarm-{M}-{cap}-r{r}.json') for r in range(1,R+1)]
if any(warm): print(f"  PyTorch f32, allocator kept warm, medians per round:", [round(tstep(j)['median_seconds'],3) for j in warm if tstep(j)])
for t in types:
    gs=[load(f'{O}/glide-{M}-{t}-{cap}-r{r}.json') for r in range(1,R+1)]
    ratios=[tstep(tor[i])['median_seconds']/g['median_seconds'] for i,g in enumerate(gs) if g and tstep(tor[i])]
    wr=[tstep(warm[i])['median_seconds']/g['median_seconds'] for i,g in enumerate(gs) if g and tstep(warm[i])]
    print(f"  glide {t}: step medians {[round(g['median_seconds'],3) for g in gs if g]}  ratio vs PyTorch per round {[round(x,2) for x in ratios]}"
          + (f" (vs warm allocator {[round(x,2) for x in wr]})" if wr else "")
          + f"  peak RSS {max(g['peak_rss_bytes'] for g in gs if g)/2**30:.2f} GiB")
print("  PyTorch peak RSS: %.2f GiB" % (max(j['peak_rss_bytes'] for j in tor if j)/2**30))
PY
