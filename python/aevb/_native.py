"""Loads the fastest build of the C++ core that this CPU runs.

The package ships one build per instruction set: ``_core`` (any CPU), and on x86-64 ``_core_avx2``
(AVX2 + FMA) and ``_core_avx512`` (AVX-512). Set ``AEVB_ISA`` to ``baseline``, ``avx2`` or ``avx512`` to
choose one yourself (e.g. to compare them); asking for one the CPU cannot run raises ImportError.
Results agree across builds to rounding, not bit for bit.
"""

import importlib
import os

from aevb import _core as _baseline

_MODULES = {"baseline": "_core", "avx2": "_core_avx2", "avx512": "_core_avx512"}


def _load(isa):
    if isa != "baseline" and not _baseline.cpu_supports()[isa]:
        raise ImportError(f"AEVB_ISA={isa!r}, but this CPU does not support {isa}")
    return importlib.import_module(f"aevb.{_MODULES[isa]}")


def _select():
    forced = os.environ.get("AEVB_ISA")
    if forced:
        if forced not in _MODULES:
            raise ImportError(f"AEVB_ISA must be one of {sorted(_MODULES)}; got {forced!r}")
        return _load(forced)
    supported = _baseline.cpu_supports()
    for isa in ("avx512", "avx2"):
        if supported[isa]:
            try:
                return _load(isa)
            except ModuleNotFoundError:  # not built here (another architecture)
                continue
    return _baseline


core = _select()
