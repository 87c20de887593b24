"""Command-line arguments refused at parse time, with one line that names the argument and value.

``int_range``/``float_range`` are argparse ``type=`` functions with bounds; ``OneLineParser``
prints ``prog: error: argument --epochs: 0 is below the minimum 1`` on one line (argparse's
default puts the usage above it) and exits with status 2, before any work starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _bounded(kind: type, name: str, low: float | None, high: float | None,
             low_open: bool = False) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None
        if value != value:  # NaN
            raise argparse.ArgumentTypeError(f"{text!r} is not {name}")
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"{text} is {'not above' if low_open else 'below'} the minimum {low:g}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} is above the maximum {high:g}")
        return value

    parse.__name__ = name.replace(" ", "_")  # argparse names the type in some messages
    return parse


def int_range(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type=``: an integer within ``[low, high]`` (either bound optional)."""
    return _bounded(int, "an integer", low, high)  # type: ignore[return-value]


def float_range(low: float | None = None, high: float | None = None, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type=``: a number within ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    return _bounded(float, "a number", low, high, low_open)


def positive_int(text: str) -> int:
    return int_range(1)(text)


def positive_float(text: str) -> float:
    return float_range(0, low_open=True)(text)


def fail(message: str, code: int = 2) -> int:
    """Print one ``error:`` line on stderr and return the exit status (for checks after parsing)."""
    print(f"error: {message}", file=sys.stderr)
    return code


def choice_list(choices: tuple[str, ...] | list[str]) -> Callable[[str], list[str]]:
    """An argparse ``type=``: a comma-separated list, each item one of ``choices``."""

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        wrong = [item for item in items if item not in choices]
        if wrong:
            raise argparse.ArgumentTypeError(f"invalid choice(s): {', '.join(map(repr, wrong))} "
                                             f"(choose from {', '.join(choices)})")
        if not items:
            raise argparse.ArgumentTypeError("at least one is required")
        return items

    parse.__name__ = "choice_list"
    return parse


def n_jobs(text: str) -> int:
    """An argparse ``type=``: scikit-learn's ``n_jobs``, -1 (every core) or a positive count."""
    value = int_range(-1)(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 threads: give -1 (every core) or at least 1")
    return value
