#!/usr/bin/env bash
# Install zer0llm (editable) into the active environment, with the right torch for this machine:
#   bash tools/install.sh          # the library and the `zer0llm` command
#   bash tools/install.sh dev      # plus nbdev, jupyter, tensorboard, peft (to run the tests)
# On a machine without an NVIDIA GPU torch comes as the CPU build: PyPI's default Linux wheel pulls
# several GB of CUDA libraries. A torch that is already installed is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
if python -c 'import torch' 2>/dev/null; then
  echo "keeping torch $(python -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1; then
  pip install torch
else
  links=${PIP_FIND_LINKS:-$(pip config get global.find-links 2>/dev/null || true)}
  wheel=$(ls $links/torch-*+cpu-*.whl 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$wheel" ]; then pip install "$wheel"          # a local CPU wheel (offline machines)
  else pip install torch --index-url https://download.pytorch.org/whl/cpu; fi
fi
pip install -e ".${1:+[$1]}"
