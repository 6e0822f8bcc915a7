"""The machine a figure was measured on: CPU model, cores, the instruction sets the models' speed
hangs on (int8 runs fast with AVX-512 VNNI, training in bf16 with AVX-512 BF16) and onnxruntime's
providers, so that figures from two machines are never confused.

Usage::

    python -m tiltwatch.machine        # one line; bench prints and records the same
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")


def describe_machine() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:  # not Linux: no flags to read
        pass
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:
        providers = []
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "flags": {f: f in flags for f in FLAGS} if flags else None,
        "onnxruntime_providers": providers,
        "python": platform.python_version(),
    }


def machine_line(m: dict[str, Any]) -> str:
    flags = " ".join(f if ok else f"no-{f}" for f, ok in (m["flags"] or {}).items()) or "flags unknown"
    return f"{m['cpu']}, {m['cores']} cores, {flags}; onnxruntime {', '.join(m['onnxruntime_providers']) or 'none'}"


if __name__ == "__main__":
    print(machine_line(describe_machine()))
