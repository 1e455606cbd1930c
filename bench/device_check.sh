#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see the device tool), most telling first, each part under its
# own time limit so one slow part cannot take the others' time: the CUDA tests of the renderer (exact
# crossings and gradient fills included), fit seconds and how launch-bound a step is, eager and with the
# fused stages (gpu_fit.py), the working-size costs, the renderer benchmark.
# Usage: bench/device_check.sh [PROTOTYPE_DIR]
# Needs resvg-py and svgelements, which that machine's Python lacks: carry their wheels in .whl/ (and the
# prototype, for the renderer bench, in .whl/proto/; see the device tool's README).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
out="${OUT:-/tmp}"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
[ -d .whl/site ] && export PYTHONPATH="$PYTHONPATH:$PWD/.whl/site"
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_renderer.py -k cuda -s 2>&1 | grep -v Warning \
  | tee "$out/cuda-tests.log"
timeout 270 python3 bench/gpu_fit.py 2>&1 | grep -v Warning | tee "$out/gpu-fit.log"
timeout 80 python3 bench/working_size.py --device cuda --sizes 256,512,1024 --paths 1024,4096 2>&1 \
  | tee "$out/working-size-cuda.log"
timeout 80 python3 bench/render.py --device cuda --iters 20 --scenes 1024x512,4096x1024,fit \
  ${1:+--prototype "$1"} 2>&1 | grep -v Warning | tee "$out/bench-cuda.log"
