#!/usr/bin/env bash
# The prepared GPU check for a session that is lent a device: the CUDA tests, then the landscape benchmark on
# the GPU (the target: >= 30x faster than the reference approach on the same GPU). One bounded run.
# The device machine has no network: it uses its own Python and CUDA torch. Pure-Python packages it lacks
# (loss-landscapes, pytest, ...) travel as wheels in .whl/ (download them here, name .whl in the run's carry;
# see the device tool's README).   Usage there, from the repository root:  bash benchmarks/gpu_check.sh
set -uo pipefail
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
timeout 180 python3 -m pytest -m cuda -q -p no:cacheprovider tests/test_landscape.py tests/test_curvature.py
timeout 300 python3 benchmarks/landscape.py --device cuda --modes wall --engines auto,vmap --repeats 2
