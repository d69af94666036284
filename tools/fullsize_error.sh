#!/bin/bash
# Error of glide's full-size forward against PyTorch f32 on the same input, per weight type.
# Needs the reference outputs written by
#   /tmp/venv/bin/python tools/make_model_goldens.py --skip-tiny --fullsize base.pt --fullsize-out /tmp/fs-base
#   /tmp/venv/bin/python tools/make_model_goldens.py --skip-tiny --fullsize upsample.pt --fullsize-model upsample --fullsize-out /tmp/fs-upsample
# and the converted files DIR/{base,upsample}-TYPE.glw. Prints max|y - y_ref| / std(y_ref) and RMS(y - y_ref) / RMS(y_ref).
# Usage: tools/fullsize_error.sh [GLIDE] [TYPES...]   (env DIR, default /tmp/glide-ckpts; GLIDE_CPU caps the kernels)
G=${1:-.build/release/glide}; shift; TYPES=${@:-f32 f16 bf16 int8}
DIR=${DIR:-/tmp/glide-ckpts}; PYTHON=${PYTHON:-/tmp/venv/bin/python}
for m in base upsample; do
  D=/tmp/fs-$m; ins="--input x=$D/x.npy --input timesteps=$D/timesteps.npy --input tokens=$D/tokens.npy --input mask=$D/mask.npy"
  [ -f $D/low_res.npy ] && ins="$ins --input low_res=$D/low_res.npy"
  for t in $TYPES; do
    $G forward $DIR/$m-$t.glw $ins -o ${TMPDIR:-/tmp}/fullsize-error-$$-$m-$t.npy --quiet >/dev/null 2>&1 || { echo "$m $t FAILED"; continue; }
    $PYTHON -c "
import numpy as np; r=np.load('$D/out.npy').astype(np.float64); y=np.load('${TMPDIR:-/tmp}/fullsize-error-$$-$m-$t.npy').astype(np.float64)
d=y-r; print('$m $t  max|d|/std=%.3e  rms(d)/rms(r)=%.3e' % (np.abs(d).max()/r.std(), np.sqrt((d**2).mean()/(r**2).mean())))"
  done
done
