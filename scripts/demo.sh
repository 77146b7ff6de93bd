#!/usr/bin/env bash
# The whole system, as far as it exists, on bundled data: `make demo` runs it.
# Usage: scripts/demo.sh [OUT_DIR]   (default out/demo)
set -euo pipefail
out=${1:-out/demo}
bin=.venv/bin
mkdir -p "$out"

echo "== 1/1 English phrase dictionary (Beam on 2 local workers, KenLM) from data/en"
"$bin/ambert" phrases --corpus data/en --out "$out/phrases" --min-count 3 \
  --direct_num_workers 2 --direct_running_mode multi_processing

echo
echo "Top phrases (phrase, n, count, score):"
head -n 15 "$out/phrases/phrases.tsv" | column -t -s $'\t'
echo
echo "Results in $out/phrases: phrases.tsv, ngrams/*.parquet, lm.arpa, lm.binary, stats.json"
