#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see the device tool): CUDA tests of the renderer (exact
# crossings included), the renderer benchmark, ALV fidelity/speed on CUDA, the working-size costs. Usage: bench/device_check.sh [PROTOTYPE_DIR]
# Needs resvg-py for the fidelity part: carry a cp312 wheel in .whl/ (see the device tool's README).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
out="${OUT:-/tmp}"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider tests/test_renderer.py -k cuda -s 2>&1 | grep -v Warning | tee "$out/cuda-tests.log"
python3 bench/render.py --device cuda --iters 20 --scenes 256x256,1024x512,2048x512,4096x1024,fit \
  ${1:+--prototype "$1"} 2>&1 | grep -v Warning | tee "$out/bench-cuda.log"
python3 bench/fidelity.py --device cuda --vtracer "" 2>&1 | grep -v -i warn | tee "$out/fidelity-cuda.log"
python3 bench/fidelity.py --device cuda --vtracer "" --photos tuning --sheets "" 2>&1 | grep -v -i warn | tee "$out/fidelity-tuning-cuda.log"
python3 bench/working_size.py --device cuda --sizes 256,512,1024 --paths 1024,4096 2>&1 | tee "$out/working-size-cuda.log"
