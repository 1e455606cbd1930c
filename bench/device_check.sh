#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see the device tool): CUDA tests of the renderer, then the
# renderer benchmark on CUDA. Usage: bench/device_check.sh [PROTOTYPE_DIR]  (writes logs to $OUT)
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
out="${OUT:-/tmp}"
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider tests/test_renderer.py -k cuda -s 2>&1 \
  | grep -v Warning | tee "$out/cuda-tests.log"
python3 bench/render.py --device cuda --iters 20 --scenes 256x256,1024x512,2048x512,4096x1024 \
  ${1:+--prototype "$1"} 2>&1 | grep -v Warning | tee "$out/bench-cuda.log"
