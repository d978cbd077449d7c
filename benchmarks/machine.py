"""What every benchmark command shares: the machine's description and the smoke switch."""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path


def smoke_from_environment() -> bool:
    """``MULTILAYER_SMOKE=1`` turns any benchmark command into its seconds-long smoke run,
    written to a temporary directory (so the docs' commands can run in CI)."""
    return os.environ.get("MULTILAYER_SMOKE", "").strip() not in ("", "0")


def smoke_directory() -> Path:
    return Path(tempfile.mkdtemp(prefix="multilayer-bench-smoke-"))


def machine_description() -> dict:
    """CPU model, core count, Python, NumPy and its BLAS (via threadpoolctl when present)."""
    import numpy as np

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_at_start": os.getloadavg()[0],
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: pool.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for pool in threadpool_info()
        ]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    try:
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        info["memory_gb"] = round(memory_kb / 1024**2, 1)
    except (OSError, StopIteration):
        pass
    return info
