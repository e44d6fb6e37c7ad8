# SPDX-License-Identifier: GPL-2.0
"""Targets in a module that refuses subinterpreters: faulthandler (a
single-phase extension module on 3.12-3.15) is imported at the top, as a
main script or a library may do."""

import faulthandler  # noqa: F401

import pyshm_workers as pw

from real_targets import where


def echo_all():
    for msg in pw.parent:
        pw.parent.post_message(msg)


def where_here():
    return where()


def init():
    pass


class Thing:
    def __init__(self, v):
        self.v = v
