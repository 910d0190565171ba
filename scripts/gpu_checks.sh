#!/usr/bin/env bash
# Every check that needs an NVIDIA GPU, in one run of about 7 minutes on an H100: the gpu-marked
# tests, then SD1.5 and SDXL (random weights) against plain diffusers, default and fast mode, and
# SD1.5's fast-mode warm-up a second time (from the compile cache).
#   scripts/gpu_checks.sh [OUT_DIR]        (default out/gpu; one log per check)
# Packages the machine lacks can come as wheels: WHEELS=folder installs them to a temporary
# folder first. Runs from a checkout; the app itself need not be installed.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/gpu}"
mkdir -p "$out"
py="${PYTHON:-python3}"
if [ -n "${WHEELS:-}" ]; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/diffuse-studio-site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH="/tmp/diffuse-studio-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/machine.txt"
"$py" -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)" 2>/dev/null | tee -a "$out/machine.txt"
stamp "gpu tests"
timeout 300 "$py" -m pytest -p no:cacheprovider -p no:logging -q -m gpu tests/backend/test_gpu.py -rA > "$out/gpu_tests.log" 2>&1
grep -E "^(PASSED|FAILED|ERROR)|passed|failed" "$out/gpu_tests.log"
quiet() { grep -v -i -E "warn|float32|deprecat|^\s*$"; }
bench() { timeout 400 "$py" -m desktop_app bench --random-weights --steps 30 --repeats 3 --device cuda --precision fp16 "$@" 2>&1 | quiet; }
stamp "SD1.5"; bench --arch sd15 --fast | tee "$out/bench_sd15.txt"
stamp "SD1.5 again, compile cache warm"; bench --arch sd15 --fast | tee "$out/bench_sd15_cached.txt"
stamp "SDXL"; bench --arch sdxl --fast | tee "$out/bench_sdxl.txt"
stamp "done"
