"""Pixels in, faces out: detect, align, embed, measure quality. Pure and stateless.

Nothing here knows about subjects, consent or storage. Models are loaded once per
process (see :mod:`visage.vision.model`) from installed packages, never downloaded.
"""
