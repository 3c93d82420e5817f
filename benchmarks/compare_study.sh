#!/usr/bin/env bash
# The two comparison studies reported in docs/results.md (run 2026-11-30 on the shared 2-core
# development machine): one `cdfis compare` per CPU, each with one torch thread, on its own
# import of the 215-patient IDC cohort. Study A: the paper's samplers; study B: the two
# cost-saving CDF presets. 5 seeds, 90 s of training per run, 40 validation + 40 test patients.
#
#   benchmarks/compare_study.sh NAME CPU SAMPLERS       e.g.
#   benchmarks/compare_study.sh A 0 uniform,topk,cdf-presample,cdf-history &
#   benchmarks/compare_study.sh B 1 uniform,cdf-selective,cdf-budget &
#
# BUDGET (training seconds per run, default 90) and CADENCE (validation every CADENCE x
# budget, default 0.05) set the clock; the second round of studies used BUDGET=30
# CADENCE=0.025, because uniform reached the target at the first validation (4.5 s) of most
# 90 s runs, which floors every ratio at 1.
# LR (default 0.001) is the learning rate.
# SEED (default 0) seeds compare's patient split and run order: a study with another SEED
# is an independent replicate on other validation/test patients.
# Writes NAME/project (the imported cohort, reused when present) and NAME/results.
# CDFIS_TEST_DATA points at the shared data (default: ../shared/data beside the checkout).
set -euo pipefail
name=${1:?usage: benchmarks/compare_study.sh NAME CPU SAMPLERS}
cpu=${2:?usage: benchmarks/compare_study.sh NAME CPU SAMPLERS}
samplers=${3:?usage: benchmarks/compare_study.sh NAME CPU SAMPLERS}
here=$(cd "$(dirname "$0")/.." && pwd)
data=${CDFIS_TEST_DATA:-$here/../shared/data}
cohort=$data/patches/idc_cohort
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
cdfis=(taskset -c "$cpu" python -m cdfis_desktop)
if [ ! -f "$name/project/project.toml" ]; then
  "${cdfis[@]}" import-patches --project "$name/project" --csv "$cohort/labels.csv" \
    --root "$cohort" --class-map non-IDC=0,IDC=1
fi
start=$(date +%s)
"${cdfis[@]}" compare --project "$name/project" --samplers "$samplers" --seeds 5 --time-budget "${BUDGET:-90}" \
  --val-fraction 0.186 --test-fraction 0.186 --target-metric balanced_accuracy \
  --target-fraction 0.99 --val-cadence "${CADENCE:-0.05}" --warmup-run 0.1 \
  --model smallcnn --input-px 48 --batch 64 --lr "${LR:-0.001}" --presample 8 --floor 0.1 \
  --warmup epochs:1 --device cpu --seed "${SEED:-0}" --out "$name/results"
echo "wall time of the comparison: $(( $(date +%s) - start )) s"
