"""Named, order-independent random streams.

Every random quantity is drawn from its own stream, identified by the master
seed and a tuple of names/integers, e.g. ``stream(seed, "income", "noise", 2023)``.
Consequences:

* the output is a pure function of ``(seed, persons, waves)``: no global state,
  no dependence on the order in which modules are called;
* a *persistent* person effect (same value in every wave, giving panel
  coherence) is simply a stream without the wave in its key, regenerated on
  demand instead of being held in memory across waves;
* adding a new variable does not shift the draws of the existing ones.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(part: str | int) -> int:
    if isinstance(part, (int, np.integer)):
        return int(part) & 0xFFFFFFFF
    return zlib.crc32(str(part).encode("utf-8"))


def stream(seed: int, *parts: str | int) -> np.random.Generator:
    """A generator seeded by ``seed`` and the (stable, CRC32-hashed) ``parts``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *(_key(p) for p in parts)]))


def normal(seed: int, n: int, *parts: str | int) -> np.ndarray:
    """``n`` standard normal draws from the named stream."""
    return stream(seed, *parts).standard_normal(n)


def uniform(seed: int, n: int, *parts: str | int) -> np.ndarray:
    """``n`` uniform(0, 1) draws from the named stream."""
    return stream(seed, *parts).random(n)


def panel_normal(seed: int, n: int, name: str, wave: int, rho: float) -> np.ndarray:
    """Standard normal with correlation ``rho`` between waves of the same unit.

    ``rho * persistent + sqrt(1 - rho^2) * transitory``: a person keeps most of
    his/her position from one wave to the next (stable status and income rank)
    while a little churn happens.
    """
    persistent = normal(seed, n, name, "persistent")
    transitory = normal(seed, n, name, "wave", wave)
    persistent *= rho
    persistent += np.sqrt(1.0 - rho * rho) * transitory
    return persistent
