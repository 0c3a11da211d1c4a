#!/usr/bin/env bash
# The prepared GPU check for a session that is lent a device: the CUDA tests, then the landscape benchmark on
# the GPU (the target: >= 30x faster than the reference approach on the same GPU). One run, bounded.
# Usage on the device machine, from the repository root:  bash benchmarks/gpu_check.sh
set -uo pipefail
python3 -m venv /tmp/lossviz-gpu-venv && . /tmp/lossviz-gpu-venv/bin/activate
# The device machine has its own torch build with CUDA; take whatever is there rather than the CPU pin.
pip install -q numpy scikit-learn plotly "streamlit>=1.40,<2" pytest loss-landscapes==3.0.6 torch 2>&1 | tail -2
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
timeout 180 python -m pytest -m cuda -q tests/test_landscape.py tests/test_curvature.py
timeout 300 python benchmarks/landscape.py --device cuda --modes wall --engines auto,vmap --repeats 2
