#!/usr/bin/env bash
# Reproduce the paper's six fractal dimensions (docs/reproduction.md).
# Resumable: rerun the same command after an interruption; finished tiles are kept in $OUT.
# Override the settings with environment variables, e.g.  SIZE=256x256 DEPTH=4 bash scripts/docs/reproduce_paper.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${SIZE:-128x128}     # frame size; keyframes are 2x this (256x256 by default)
DEPTH=${DEPTH:-}          # zoom depth in decades; empty: down to the published panel
STEPS=${STEPS:-}          # empty: each config's own steps (500)
OUT=${OUT:-out/reproduce}
args=(--size "$SIZE" --out "$OUT")
if [ -n "$DEPTH" ]; then args+=(--depth "$DEPTH"); fi
if [ -n "$STEPS" ]; then args+=(--steps "$STEPS"); fi
python scripts/docs/reproduce_paper.py "${args[@]}" "$@"
