#!/usr/bin/env bash
# Make trained starting points for assets/runs: built-in shapes, DD3D (warm-started from the herding
# clouds, with the lab's generator: 2-D noise per point at ω0 30, so the clouds are surfaces) and GM,
# cpc 1 and 10, 20 iterations of 10 matching steps (200 updates), 256 training points, stored at
# 512 points (DD3D regenerates at any resolution; after the warm start it matches at distill.generator.warm_lr,
# which keeps the fitted shapes). Resumable: finished folders are kept.
# Open a pair with: dd3d-lab --run assets/runs/shapes-dd3d-cpc1 --run assets/runs/shapes-gm-cpc1 (or cpc10)
set -euo pipefail
cd "$(dirname "$0")/.."
DD3D=${DD3D:-.venv/bin/dd3d}
COMMON=(--set distill.resolution=256 --set distill.real_batch=16 --set distill.outer_loop=10
        --set distill.inner_loop=1 --set distill.iterations=20 --set eval.resolution=512 --set threads=1)
for cpc in 1 10; do
  for method in dd3d gm; do
    out=assets/runs/shapes-$method-cpc$cpc
    [ -f "$out/distill.json" ] && continue
    if [ -f "$out/checkpoint.pt" ]; then "$DD3D" distill --resume "$out"; continue; fi
    extra=()
    [ "$method" = dd3d ] && extra=(--set distill.generator.init=real --set distill.generator.noise_dim=2
                                   --set distill.generator.omega0=30)
    "$DD3D" distill --config configs/shapes.yaml --method "$method" --cpc "$cpc" --out "$out" "${COMMON[@]}" "${extra[@]}"
  done
done
