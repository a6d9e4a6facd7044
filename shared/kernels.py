"""Native CPU kernels for the few places where ATen has no fast path (``csrc/cpu_kernels.cpp``).

Why, measured in docs/results/core.md:
- A single-image 3x3 convolution already runs at the core's FMA rate in oneDNN, so the only way to
  make it faster is fewer multiply-adds. Winograd's F(2x2, 3x3) does 2.25x fewer; its products are
  one batched GEMM (MKL), its tile transforms (cheap loops in C++, a dozen memory passes as PyTorch
  ops) live here.
- A GPT decode step multiplies a few rows by weights that are cold at every step (they do not fit
  in L3): ``rows_linear`` streams each weight row once for all rows and prefetches the next rows,
  which neither MKL's small-M GEMM nor inductor's generated loop does. ``attend_one_query`` attends
  one new query per head over the filled cache slots in one call instead of a dozen small ops.

The kernels are compiled once per machine on first use (``torch.utils.cpp_extension``, ``-O3
-march=native``, ~30 s) into ``~/.cache/genforge/kernels/`` (or ``$GENFORGE_KERNEL_CACHE``) and
registered as ``torch.ops.genforge_cpu``. Where that is impossible (no C++ compiler, a failed build) or
unwanted (``GENFORGE_NATIVE_KERNELS=0``), :func:`available` is False after one warning and callers keep
PyTorch's own kernels: the kernels change speed, never results beyond float rounding.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import threading
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("csrc") / "cpu_kernels.cpp"
FLAGS = ["-O3", "-march=native", "-fopenmp-simd"]

_state: dict[str, bool] = {}
_lock = threading.Lock()  # one build and one registration per process, even from several threads

# Winograd F(2x2, 3x3) weight transform G g G^T (Lavin & Gray, 2016).
_G = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: a build is reused only on a CPU with the same flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        flags = next((line for line in info.splitlines() if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    text = "|".join([platform.machine(), platform.processor(), flags, torch.__version__, *FLAGS])
    return hashlib.sha1(text.encode() + SOURCE.read_bytes()).hexdigest()[:16]


def _build_directory() -> Path:
    root = os.environ.get("GENFORGE_KERNEL_CACHE") or Path.home() / ".cache" / "genforge" / "kernels"
    path = Path(root) / f"cpu-{_cpu_signature()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _ninja_on_path() -> None:
    """cpp_extension runs ``ninja`` from PATH; the ``ninja`` wheel installs it beside this interpreter,
    which is not on PATH when a virtual environment's python is run without activating it."""
    if shutil.which("ninja"):
        return
    candidates = [Path(sys.executable).parent]
    try:
        import ninja

        candidates.insert(0, Path(ninja.BIN_DIR))
    except (ImportError, AttributeError):
        pass
    for folder in candidates:
        if (folder / "ninja").exists():
            os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"
            return


def _load() -> None:
    from torch.utils.cpp_extension import load

    _ninja_on_path()
    directory = _build_directory()
    if not (directory / "genforge_cpu.so").exists():
        print(f"genforge: compiling native CPU kernels once into {directory} (~30 s) ...", file=sys.stderr)
    load(
        name="genforge_cpu",
        sources=[str(SOURCE)],
        extra_cflags=FLAGS,
        build_directory=str(directory),
        is_python_module=False,
        verbose=False,
    )
    # shapes for torch.compile, which calls these ops inside generated graphs
    torch.library.register_fake("genforge_cpu::rows_linear")(
        lambda x, weight, bias: x.new_empty(x.shape[0], weight.shape[0])
    )
    torch.library.register_fake("genforge_cpu::attend_one_query")(lambda q, k, v, pos: q.new_empty(q.shape))


def available() -> bool:
    """True when ``torch.ops.genforge_cpu`` is loaded (building it on the first call)."""
    if "ok" in _state:
        return _state["ok"]
    with _lock:
        if "ok" in _state:
            return _state["ok"]
        if os.environ.get("GENFORGE_NATIVE_KERNELS", "1") == "0":
            _state["ok"] = False
            return False
        try:
            _load()
            _state["ok"] = True
        except Exception as err:  # no compiler, no ninja, a failed build: fall back, say why once
            _state["ok"] = False
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            warnings.warn(
                f"genforge: native CPU kernels unavailable ({reason}); using PyTorch's own kernels, "
                "which give the same results, slower. Set GENFORGE_NATIVE_KERNELS=0 to silence this.",
                RuntimeWarning,
                stacklevel=2,
            )
    return _state["ok"]


def has_rows_linear() -> bool:
    """True when the kernels are available and were built with AVX-512 (:func:`rows_linear`)."""
    return available() and bool(torch.ops.genforge_cpu.has_rows_linear())


def rows_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` for a few float32 rows ``x`` [R, in] (a decode step: R = batch),
    streaming each weight row once for all rows with the next rows prefetched. Needs
    :func:`has_rows_linear`; sums run in another order than BLAS's (float rounding only)."""
    return torch.ops.genforge_cpu.rows_linear(x, weight, bias)


def attend_one_query(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` of one float32 query per head (``q`` [B, H, 1, D]) over the cache
    slots ``0..pos`` of ``k``, ``v`` [B, H, L, D] (``pos``: a one-element integer tensor): a decode
    step's attention in one call. Needs :func:`available`."""
    return torch.ops.genforge_cpu.attend_one_query(q, k, v, pos)


def winograd_weights(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 convolution's weight [O, C, 3, 3] in Winograd F(2x2, 3x3) form [16, O, C]."""
    g = _G.to(weight.dtype)
    u = torch.einsum("ik,ockl,jl->ijoc", g, weight, g)
    return u.reshape(16, weight.shape[0], weight.shape[1]).contiguous()


def winograd_conv3x3(
    x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor | None, residual: torch.Tensor | None = None
) -> torch.Tensor:
    """``conv2d(x, w, bias, padding=1) (+ residual)`` for float32 CPU ``x`` [N, C, H, W], given
    ``weights = winograd_weights(w)``. Needs :func:`available`."""
    n, _, h, w = x.shape
    tiles = torch.ops.genforge_cpu.winograd_input(x)
    products = torch.bmm(weights, tiles)
    return torch.ops.genforge_cpu.winograd_output(products, bias, residual, n, h, w)
