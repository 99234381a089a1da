"""Command-line argument types: a number (or a comma list of them) in an allowed range."""

import argparse
from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)


def number(
    convert: Callable[[str], Number], allowed: Callable[[Number], bool], expected: str
) -> Callable[[str], Number]:
    """An argparse ``type``: ``convert(text)``, refused unless ``allowed`` holds for it.

    The error says ``expected a number >= 0, got '-1'`` (for ``expected="a number >= 0"``).
    """

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not allowed(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = number(int, lambda v: v >= 1, "a positive integer")
