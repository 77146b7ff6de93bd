#!/usr/bin/env bash
# The whole system, as far as it exists, on bundled data: `make demo` runs it.
# Usage: scripts/demo.sh [OUT_DIR]   (default out/demo)
set -euo pipefail
out=${1:-out/demo}
bin=.venv/bin
mkdir -p "$out"
beam_two_workers=(--direct_num_workers 2 --direct_running_mode multi_processing)

echo "== 1/4 English phrase dictionary (Beam on 2 local workers, KenLM) from data/en"
"$bin/ambert" phrases --corpus data/en --out "$out/phrases" --min-count 3 "${beam_two_workers[@]}"
echo "Top phrases (phrase, n, count, score):"
head -n 10 "$out/phrases/phrases.tsv" | column -t -s $'\t'

echo
echo "== 2/4 Vocab artifacts: English (words + phrases) and Chinese (characters + jieba words)"
"$bin/ambert" vocab build --lang en --corpus data/en --out "$out/vocab-en" --phrases "$out/phrases/phrases.tsv"
"$bin/ambert" vocab build --lang zh --corpus data/zh --out "$out/vocab-zh" "${beam_two_workers[@]}"

echo
echo "== 3/4 Multi-grained tokenization (coarse units; phrases joined by _)"
printf 'The United States and New York have been at least as big as Sir John said.\n' \
  | "$bin/ambert" tokenize --vocab "$out/vocab-en" --format segments
printf '中国人民今天在北京发展经济，记者报道。\n' | "$bin/ambert" tokenize --vocab "$out/vocab-zh" --format segments
printf 'New York!\n' | "$bin/ambert" tokenize --vocab "$out/vocab-en" --format json

echo
echo "== 4/4 Aligned fine/coarse examples as deterministic WebDataset shards (one paragraph per document)"
"$bin/ambert" shard build --vocab "$out/vocab-en" --corpus data/en --out "$out/shards-en" --docs-per-line \
  --samples-per-shard 4000 "${beam_two_workers[@]}"
"$bin/ambert" shard build --vocab "$out/vocab-zh" --corpus data/zh --out "$out/shards-zh" --docs-per-line \
  --samples-per-shard 4000 "${beam_two_workers[@]}"
"$bin/ambert" shard verify "$out/shards-en"
"$bin/ambert" shard inspect "$out/shards-zh" -n 1 --vocab "$out/vocab-zh"

echo
echo "Results in $out:"
echo "  phrases/   phrases.tsv, ngrams/*.parquet, lm.arpa, lm.binary, stats.json"
echo "  vocab-en/, vocab-zh/   vocab artifacts (artifact.json, fine/, coarse/, dictionary, stats.json)"
echo "  shards-en/, shards-zh/ shard-*.tar (WebDataset) + manifest.json"
