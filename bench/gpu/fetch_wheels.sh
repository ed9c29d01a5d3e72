#!/usr/bin/env bash
# Wheels the GPU machine lacks (it has torch, transformers, peft, accelerate, pyarrow, pandas…
# but no diffusers, pydantic or datasets), downloaded here into .whl/ (ignored by git) for the
# device call's `carry`. Versions pinned to what this project's venv runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl && mkdir .whl
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux1_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d .whl \
  diffusers==0.42.1 importlib_metadata pydantic==2.14.4 pydantic_core==2.50.5 \
  annotated-types typing-inspection datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
ls -la .whl
