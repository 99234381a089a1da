"""experiments.arguments: number types for argparse."""

import argparse
import math

import pytest

from experiments.arguments import number, positive_int


def test_positive_int_accepts_positive_integers_only():
    assert positive_int("7") == 7
    for text in ("0", "-3", "2.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"positive integer, got '{text}'"):
            positive_int(text)


def test_number_applies_its_conversion_and_range():
    probability = number(float, lambda v: 0 <= v <= 1, "a probability")
    assert probability("0.25") == 0.25
    for text in ("1.5", "nan", "one"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"a probability, got '{text}'"):
            probability(text)
    finite = number(float, math.isfinite, "a finite number")
    assert finite("-1e300") == -1e300
    with pytest.raises(argparse.ArgumentTypeError):
        finite("inf")
