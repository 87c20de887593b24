"""Calibrated weights by raking (Deville & Särndal 1992): the exponential or the logit distance.

Weights ``w = d * F(A @ lam)`` with ``lam`` found by Newton's method on the calibration
equations ``A.T @ w = t``. With the exponential distance (``F = exp``, raking) every weight is
positive and, on categorical margins, the weights are those of iterative proportional fitting
(the test checks both). With ``bounds=(L, U)`` the logit distance (Deville & Särndal's method 4,
CALMAR's ``logit``) keeps every ratio ``w / d`` inside ``[L, U]`` (strictly in exact arithmetic): no household stands for
many more than itself, which an unbounded raking allows when a few households carry a cell that
the others lack. Linearly dependent controls (person cells that add up to the number of persons,
which household sizes also give) are handled by a least-squares Newton step.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from scipy.special import expit

from synth_assets.common.parallel import resolved_jobs

#: Rows of the design in one piece of the Newton step's Hessian (a sum over the rows): its
#: transient copies (the rows times their weights, transposed) are a piece's, not the design's.
#: On a 148 MiB design (849,594 households, 2 million persons) raking rose 624 MB whole, 236 MB
#: in pieces, and took 10 s instead of 19 (bench/scale/rake.py).
HESSIAN_ROWS = 100_000

#: Newton's floor: once every control is within ``STALL_BELOW`` of its target (relative), raking stops
#: when ``STALL_ITERATIONS`` steps in a row have not halved the worst residual. Near the solution
#: Newton's steps cut it by orders; a system it cannot solve further (controls that nearly depend
#: on each other, few households carrying a cell) leaves it creeping at rounding level. Measured on
#: replicate 2 of a 1.2-million-person run (510,300 households, 732 controls): 5.0e-8 after 10 steps,
#: 3.78e-8 from step 25 to 100 with the weights unchanged (1e-15), 91 s for the 100 steps; replicate 1
#: converged (1e-10) in 5 (bench/README.md, "Twenty-second pass").
STALL_BELOW = 1e-6
STALL_ITERATIONS = 3

#: Newton's plateau at any level: ``STALL_ITERATIONS`` steps in a row that move no weight by more than
#: this share of its design weight, the worst residual not halved either, end the search, unconverged. Bounds no weights meet leave the
#: residual there: on a 50,000-person replicate with relation x sex x age cells beside single years of
#: age (885 controls), bounded raking sat at 1.7e-3 from its sixth step on, weights moving by 1e-9, and
#: ran its 100 steps (27 s alone, 2.5 to 4 minutes with a second replicate beside it) before raking
#: without bounds (bench/README.md, "Fifty-first pass").
STALL_WEIGHT_CHANGE = 1e-6


@dataclass(frozen=True)
class _Distance:
    """A calibration distance through its calibration function ``F`` (``F(0) = 1``), ``F``'s
    derivative, and ``Phi``, a primitive of ``F`` (the dual's convex term)."""

    bounds: tuple[float, float] | None

    def __post_init__(self) -> None:
        if self.bounds is not None:
            low, high = self.bounds
            if not 0 <= low < 1 < high:
                raise ValueError(f"weight bounds {self.bounds}: expected 0 <= lower < 1 < upper")

    def _logit(self, u: np.ndarray) -> tuple[float, float, float, np.ndarray]:
        assert self.bounds is not None
        low, high = self.bounds
        slope = (high - low) / ((1 - low) * (high - 1))
        offset = float(np.log((1 - low) / (high - 1)))
        return low, high, slope, offset + slope * u  # F = high - (high - low) * expit(-z)

    def f(self, u: np.ndarray) -> np.ndarray:
        if self.bounds is None:
            return np.exp(np.clip(u, -50, 50))
        low, high, _, z = self._logit(u)
        return high - (high - low) * expit(-z)

    def derivative(self, u: np.ndarray) -> np.ndarray:
        if self.bounds is None:
            return np.exp(np.clip(u, -50, 50))
        low, high, slope, z = self._logit(u)
        return (high - low) * slope * expit(z) * expit(-z)

    def integral(self, u: np.ndarray) -> np.ndarray:
        if self.bounds is None:  # up to a constant, which the dual's steps do not see
            return np.exp(np.clip(u, -50, 50))
        low, high, slope, z = self._logit(u)
        offset = z - slope * u
        return low * u + (high - low) / slope * (np.logaddexp(0, z) - np.logaddexp(0, offset))


@dataclass(frozen=True)
class RakingResult:
    weights: np.ndarray
    iterations: int
    max_relative_residual: float
    converged: bool


def rake(
    design: sp.spmatrix | np.ndarray,
    targets: np.ndarray,
    initial: np.ndarray | None = None,
    *,
    tolerance: float = 1e-9,
    max_iterations: int = 100,
    hessian_rows: int = HESSIAN_ROWS,
    bounds: tuple[float, float] | None = None,
    stall_below: float = STALL_BELOW,
) -> RakingResult:
    """Weights of the rows of ``design`` (units x controls) whose weighted sums equal ``targets``.

    ``initial`` are the design weights the result stays closest to (default 1). Stops when
    every control is within ``tolerance`` of its target, relative to ``max(|target|, 1)``;
    ``converged`` says whether it got there (an infeasible control, one no unit carries
    while its target is not 0, never does); it also stops, unconverged, at Newton's floor above
    ``tolerance`` (:data:`STALL_BELOW`) and where steps no longer move the weights
    (:data:`STALL_WEIGHT_CHANGE`: bounds no weights meet). ``hessian_rows``: rows of the design summed at a
    time into each step's Hessian (memory, not the result). ``stall_below``: the worst residual under
    which steps that stopped halving it end the search (bounds that no weights meet exactly leave it
    creeping down for a hundred steps). ``bounds=(L, U)``: the logit distance,
    every ``w / initial`` between ``L`` and ``U`` (``0 <= L < 1 < U``); a system those
    bounds make infeasible does not converge.
    """
    distance = _Distance(None if bounds is None else (float(bounds[0]), float(bounds[1])))
    # each control in units of its target: the weights are the same, and the Newton system is no
    # longer as ill-conditioned as amounts in euros beside counts of persons make it (raw amounts
    # stopped some random designs unconverged, no halved step helping; scaled, they converge in 3)
    scale = np.maximum(np.abs(np.asarray(targets, dtype=float)), 1.0)
    a = sp.csr_matrix(design, dtype=float) @ sp.diags(1.0 / scale)
    t = np.asarray(targets, dtype=float) / scale
    d = np.ones(a.shape[0]) if initial is None else np.asarray(initial, dtype=float)
    lam = np.zeros(a.shape[1])
    w = d.copy()

    def residual(weights: np.ndarray) -> np.ndarray:  # relative to max(|target|, 1), as the columns are
        return a.T @ weights - t

    def dual(multipliers: np.ndarray, u: np.ndarray) -> float:
        # the convex function whose minimum the calibration equations are: its gradient is A.T @ w - t
        # a pairwise sum: a BLAS dot loses the last digits the steps compare near Newton's floor
        return float((d * distance.integral(u)).sum() - t @ multipliers)

    u = np.zeros(a.shape[0])  # A @ lam
    r = residual(w)
    iteration = 0
    best, stalled = np.inf, 0  # the smallest worst residual a step has halved, and the steps since
    still = 0  # steps in a row that moved no weight by more than STALL_WEIGHT_CHANGE
    for iteration in range(1, max_iterations + 1):
        worst = float(np.max(np.abs(r))) if len(r) else 0.0
        if worst <= tolerance:
            iteration -= 1
            break
        if worst <= best / 2:
            best, stalled = worst, 0
        else:
            stalled += 1
        if stalled >= STALL_ITERATIONS and (worst <= stall_below or still >= STALL_ITERATIONS):
            iteration -= 1
            break
        hessian = _hessian(a, d * distance.derivative(u), hessian_rows)
        gradient = a.T @ w - t
        # the least-squares step of minimum norm (dependent controls make the Hessian singular), by a
        # QR with column pivoting: the same step as the SVD's (to 1e-12) in 0.06 s against 0.15 s on
        # 885 controls (bench/README.md, "Fifty-first pass"); the SVD's cut-off for a small singular value
        step = linalg.lstsq(hessian, -gradient, cond=np.finfo(float).eps * max(hessian.shape),
                            lapack_driver="gelsy", check_finite=False)[0]
        # Newton can overshoot (the weights are exponential): the step is halved until the dual
        # falls enough (Armijo). Halving until the residual's norm fell instead took 41 steps of a
        # thirty-second on a 300,000-person release, where this takes 6 whole ones (the same weights).
        current, slope = dual(lam, u), float(gradient @ step)
        size = 1.0
        while size > 1e-10 and slope < 0:
            trial_u = a @ (lam + size * step)  # not u + size * (a @ step): its rounding would build up
            if dual(lam + size * step, trial_u) <= current + 1e-4 * size * slope:
                break
            size /= 2
        else:
            break
        lam, u = lam + size * step, trial_u
        moved = d * distance.f(u)
        still = still + 1 if np.all(np.abs(moved - w) <= STALL_WEIGHT_CHANGE * d) else 0
        w = moved
        r = residual(w)
    worst = float(np.max(np.abs(r))) if len(r) else 0.0
    return RakingResult(w, iteration, worst, worst <= tolerance)


def _hessian(a: sp.csr_matrix, w: np.ndarray, rows: int, threads: int | None = None) -> np.ndarray:
    """``A.T @ diag(w) @ A`` (``w``: ``d * F'(A @ lam)``), dense (controls x controls), summed ``rows``
    rows of ``A`` at a time, ``threads`` pieces at a time (default every core: SciPy's sparse product
    releases the GIL), added up in order: the same sum whatever the threads."""
    rows = max(rows, 1)

    def piece(start: int) -> np.ndarray:
        part = a[start:start + rows]
        return (part.T @ part.multiply(w[start:start + rows, None])).toarray()

    starts = range(0, a.shape[0], rows)
    workers = min(resolved_jobs(-1 if threads is None else threads), len(starts))
    hessian = np.zeros((a.shape[1], a.shape[1]))
    if workers <= 1:
        for start in starts:
            hessian += piece(start)
        return hessian
    # the pieces summed in order as they come: about ``workers`` pieces' products held at a time
    # (at 1.2 million persons 0.49 s a step on two cores against 0.82 on one, bench/README.md
    # "Thirty-sixth pass")
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rake-hessian") as pool:
        for part in pool.map(piece, starts):
            hessian += part
    return hessian
