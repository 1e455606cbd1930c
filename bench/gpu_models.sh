#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see the device tool): the model backends' tests where
# torchvision works (SAM 3), then bench/gpu_models.py at the models' real sizes on CUDA.
# Needs the project's dependencies that the machine lacks as cp312 wheels in .whl/ (carried).
set -uo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
out="${OUT:-/tmp/out}"
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, torchvision, transformers, diffusers; print('torch', torch.__version__, 'torchvision', \
torchvision.__version__, 'transformers', transformers.__version__, 'diffusers', diffusers.__version__)"
} 2>&1 | tee "$out/env.txt"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_sam3.py tests/test_flux.py 2>&1 | tail -15 \
  | tee "$out/tests.log"
timeout "${BENCH_TIMEOUT:-420}" python3 bench/gpu_models.py --device cuda --out /tmp/gpu 2>&1 | grep -v -i warn \
  | tee "$out/gpu_models.log"
cp /tmp/gpu/gpu_models.json "$out/" 2>/dev/null
for r in /tmp/gpu/run-*; do [ -f "$r/manifest.json" ] && cp "$r/manifest.json" "$out/manifest-${r##*run-}.json"; done
exit 0
