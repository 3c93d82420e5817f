#!/usr/bin/env bash
# The sampler comparison reported in docs/results.md: uniform, top-k, CDF presample and CDF
# history on the 215-patient IDC cohort (../shared/data/patches/idc_cohort), 40 validation
# and 40 test patients (stratified, the same for every run), SEEDS seeds, BUDGET_S seconds
# of training per run. Run it on a quiet machine: the times are wall-clock training time.
#
#   benchmarks/compare_idc.sh OUT_DIR [BUDGET_S=300] [SEEDS=6]
#
# Writes OUT_DIR/project (the imported cohort, reused when present), OUT_DIR/results
# (results.csv, runs.csv, summary.csv, fixed_budget.csv, comparison.png, summary.md) and
# OUT_DIR/compare.log (the command, its output and the wall time).
# CDFIS_TEST_DATA points at the shared data (default: ../shared/data beside the checkout);
# CDFIS sets the command (default: "python -m cdfis_desktop"); SAMPLERS the presets compared
# (default: uniform,topk,cdf-presample,cdf-history; e.g. uniform,cdf-prune,cdf-selective-lowres).
set -euo pipefail
out=${1:?usage: benchmarks/compare_idc.sh OUT_DIR [BUDGET_S] [SEEDS]}
budget=${2:-300}
seeds=${3:-6}
samplers=${SAMPLERS:-uniform,topk,cdf-presample,cdf-history}
here=$(cd "$(dirname "$0")/.." && pwd)
data=${CDFIS_TEST_DATA:-$here/../shared/data}
cohort=$data/patches/idc_cohort
read -r -a cdfis <<< "${CDFIS:-python -m cdfis_desktop}"
mkdir -p "$out"
if [ ! -f "$out/project/project.toml" ]; then
  "${cdfis[@]}" import-patches --project "$out/project" --csv "$cohort/labels.csv" \
    --root "$cohort" --class-map non-IDC=0,IDC=1
fi
# 40 of 215 patients each: round(0.186 x 215) = 40
command=("${cdfis[@]}" compare --project "$out/project"
  --samplers "$samplers" --seeds "$seeds" --time-budget "$budget"
  --val-fraction 0.186 --test-fraction 0.186 --target-metric balanced_accuracy
  --target-fraction 0.99 --val-cadence 0.025 --warmup-run 0.1
  --model smallcnn --input-px 48 --batch 64 --lr 0.001 --presample 8 --floor 0.1
  --warmup epochs:1 --device cpu --out "$out/results")
start=$(date +%s)
{
  echo "command: ${command[*]}"
  "${command[@]}"
  echo "wall time of the comparison: $(( $(date +%s) - start )) s"
} 2>&1 | tee "$out/compare.log"
