#!/usr/bin/env bash
# The whole GPU check as one command (see bench/README.md for the device call):
#   bash bench/gpu/run.sh            on the GPU machine, figures in $OUT (< 8 min on one H200)
#   bash bench/gpu/run.sh --smoke    on a CPU, tiny models (what tests/bench checks)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
OUT="${OUT:?set OUT to the folder for the figures}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# ../shared does not travel to the device machine: the peer scripts ride along in .peer/.
if [[ -z "${ATELIER_PEER_DIR:-}" ]]; then
  if [[ -d .peer ]]; then export ATELIER_PEER_DIR="$PWD/.peer"; fi
fi
mkdir -p "$OUT"
smoke=()
if [[ "${1:-}" == "--smoke" ]]; then smoke=(--smoke); fi

"$PYTHON" bench/gpu/gpu_suite.py --out "$OUT" "${smoke[@]}" 2>&1 | tee "$OUT/gpu_suite.log"

# Another team's captioning bench, when it is there; its output is kept as it prints it.
if [[ -f bench/caption_throughput.py && ${#smoke[@]} -eq 0 ]]; then
  timeout 150 "$PYTHON" bench/caption_throughput.py --real-shape --device cuda \
    >"$OUT/caption_throughput.txt" 2>&1 || echo "caption_throughput exited $?" >>"$OUT/caption_throughput.txt"
else
  echo "bench/caption_throughput.py not run (absent, or --smoke)" >"$OUT/caption_throughput.txt"
fi
cat "$OUT/gpu_report.txt"
