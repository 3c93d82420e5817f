"""Tiling: tissue detection, the patch grid at a target mpp, annotation labels and
patch-set mosaics (see the modules)."""

from __future__ import annotations
