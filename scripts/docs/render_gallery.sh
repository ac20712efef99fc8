#!/usr/bin/env bash
# Render the six published conditions at a modest resolution into docs/images/ (README gallery).
# Resumable (tiles are kept in $OUT). Override with e.g.  RES=512x512 bash scripts/docs/render_gallery.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RES=${RES:-256x256}
OUT=${OUT:-out/gallery}
mkdir -p docs/images
for name in tanh_baseline relu deep_linear tanh_minibatch16 tanh_dataset1 init_offset; do
  /usr/bin/env time -f "$name %e s" fractaltrain render "configs/$name.yaml" --resolution "$RES" --out "$OUT" -q
  cp "$OUT/$name.png" "docs/images/$name.png"
done
