#!/usr/bin/env bash
# Re-make the earlier MoE default tiny-moe (see README.md beside this file; the family: make models).
# Uses a CUDA GPU when there is one (bf16 autocast); otherwise all CPU cores (slow: about an hour).
set -euo pipefail
cd "$(dirname "$0")/../.."
WB="${WB:-.venv/bin/workbench}"
$WB corpus --kind mixed --n 40000 --seed 0 --out corpora/mixed --overwrite
$WB train --preset moe-tiny --corpus corpora/mixed --out data/models/tiny-moe --overwrite \
  --steps 3000 --batch-size 32 --seq-len 256 --lr 3e-3 --warmup 100 --eval-every 250 --sample-every 1000 \
  --checkpoint-every 750 --keep-checkpoints 3 --light-checkpoints --set tokenizer_vocab_size=2048 scaled_residual_init=false
