"""The identity lab: a controlled training protocol on top of ``open_clip_train``
(:mod:`idia.lab.train`), run on synthetic people and a synthetic corpus
(:mod:`idia.synthetic`) by :mod:`idia.lab.pipeline`.

Submodules are imported explicitly; this package imports nothing so that
``python -m idia.lab.train`` (the training entry point) starts cleanly.
"""
