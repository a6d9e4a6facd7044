#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install genforge into it,
# editable, with the test tools, the loan-data extra and the peer libraries the benchmarks and
# comparison tests use. Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check uv
# Everything comes from pyproject.toml: a plain `pip install -e '.[dev,loans,bench]'` installs the same.
# uv resolves the pinned torch/torchaudio pair ~5x faster than pip (see ../shared/ENVIRONMENT.md).
echo "bootstrap: installing genforge and its dependencies into .venv (a few minutes on a fresh machine) ..."
.venv/bin/uv pip install --quiet --python .venv/bin/python -e '.[dev,loans,bench]'
# Byte-compile the environment once: where PYTHONDONTWRITEBYTECODE is set, every Python process
# (each CLI and torchrun test) would otherwise recompile torch from source, ~15 s of CPU each.
.venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null 2>&1 || true
