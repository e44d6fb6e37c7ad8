# SPDX-License-Identifier: GPL-2.0
"""numpy targets: numpy refuses subinterpreters (3.12+), so mode="auto"
runs these in process workers."""

import numpy

from real_targets import where


def total(a):
    return a.sum()


def scaled(a, k):
    """A new array: k * a, and where it was made."""
    return numpy.asarray(a) * k, where()


def ones(n):
    return numpy.ones(n)
