#!/usr/bin/env bash
# The seeds' family ablation (issue 15): every model of `ambert ablation --models` beside its no-pre-training
# control, 3 fine-tuning seeds, held-out pre-training loss, on Chinese sentiment (low-resource: the first
# LOW_ROWS training rows) and the balanced English grain task. Writes OUT/{zh,en}/results.{md,png,json}.
# Usage: benchmarks/ablation_family.sh [OUT] [STEPS]   (defaults: out/bench-ablation, 300; env LOW_ROWS=200,
# SEEDS=3, EPOCHS=10, MODELS=bert,bert-wwm,macbert,pert,bert-coarse,ambert,combo,hybrid)
set -euo pipefail
out=${1:-out/bench-ablation}
steps=${2:-300}
bin=.venv/bin
w=(--direct_num_workers 2 --direct_running_mode multi_processing)
mkdir -p "$out"
[ -f "$out/phrases/phrases.tsv" ] || "$bin/ambert" phrases --corpus data/en --out "$out/phrases" --min-count 3 "${w[@]}"
[ -f "$out/vocab-en/artifact.json" ] || "$bin/ambert" vocab build --lang en --corpus data/en --out "$out/vocab-en" \
  --phrases "$out/phrases/phrases.tsv" --similar-words 10
[ -f "$out/vocab-zh/artifact.json" ] || "$bin/ambert" vocab build --lang zh --corpus data/zh --out "$out/vocab-zh" \
  --similar-words 10 "${w[@]}"
# held-out text, never pre-trained on: the texts of the labeled test sets, one document per line
"$bin/python" - "$out" "${LOW_ROWS:-200}" <<'PY'
import gzip, sys
out, rows = sys.argv[1], int(sys.argv[2])
for lang, name in (("zh", "zh_sentiment"), ("en", "en_reuters_grain")):
    with gzip.open(f"data/labeled/{name}_test.tsv.gz", "rt", encoding="utf-8") as f, open(f"{out}/heldout-{lang}.txt", "w", encoding="utf-8") as o:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[0] != "label":
                o.write(" ".join(parts[1:]) + "\n")
for split in ("train", "dev", "test"):  # zh low-resource: the first `rows` training rows, the whole dev and test
    with gzip.open(f"data/labeled/zh_sentiment_{split}.tsv.gz", "rt", encoding="utf-8") as f:
        lines = f.readlines()
    with gzip.open(f"{out}/zh_low_{split}.tsv.gz", "wt", encoding="utf-8") as o:
        o.writelines(lines[:rows] if split == "train" else lines)
PY
for l in en zh; do
  [ -f "$out/shards-$l/manifest.json" ] || "$bin/ambert" shard build --vocab "$out/vocab-$l" --corpus "data/$l" \
    --out "$out/shards-$l" --docs-per-line --samples-per-shard 4000 "${w[@]}"
  [ -f "$out/heldout-shards-$l/manifest.json" ] || "$bin/ambert" shard build --vocab "$out/vocab-$l" \
    --corpus "$out/heldout-$l.txt" --out "$out/heldout-shards-$l" --docs-per-line --samples-per-shard 4000
done
models=${MODELS:-bert,bert-wwm,macbert,pert,bert-coarse,ambert,combo,hybrid}
common=(--steps "$steps" --seeds "${SEEDS:-3}" --epochs "${EPOCHS:-10}" --lr 1e-3 --models "$models")
"$bin/ambert" ablation --out "$out/zh" "${common[@]}" --zh-shards "$out/shards-zh" --zh-vocab "$out/vocab-zh" \
  --zh-labeled "$out/zh_low" --zh-heldout "$out/heldout-shards-zh" &
"$bin/ambert" ablation --out "$out/en" "${common[@]}" --en-shards "$out/shards-en" --en-vocab "$out/vocab-en" \
  --en-labeled data/labeled/en_grain_balanced --en-heldout "$out/heldout-shards-en" &
wait
