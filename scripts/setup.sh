#!/usr/bin/env bash
# Set up brainmis on a fresh machine: a virtual environment in .venv with the project and its
# test tools (the `dev` extra, which includes `crosscheck`: himalaya, a reference solver the
# tests compare against).
# Unless a torch is already importable in .venv, it first runs `pip install torch==2.13.0`:
# that installs whatever build pip's package index serves for this platform (on Linux, PyPI's
# wheel bundles the CUDA libraries; a mirror may serve a CPU-only build). To choose the build,
# install torch into .venv before running this script; a CPU-only build comes from PyTorch's
# CPU-only wheel index (see the install selector on PyTorch's site for its URL):
#   python3 -m venv .venv && .venv/bin/python -m pip install torch==2.13.0 --index-url <URL>
#
#   bash scripts/setup.sh               # project + dev tools
#   bash scripts/setup.sh --with-slurm  # also Debian's slurm-wlm + munge (root), for the SLURM tests
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--with-slurm" ]; then
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q torch==2.13.0
fi
.venv/bin/python -m pip install -q -e '.[dev]'
.venv/bin/python -c "import brainmis, torch, lightning, transformers, peft; print('brainmis', brainmis.__version__, '| torch', torch.__version__, '| lightning', lightning.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__)"
