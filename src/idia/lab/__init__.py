"""The identity lab: synthetic people and corpus (:mod:`idia.lab.synth`) and a controlled
training protocol on top of ``open_clip_train`` (:mod:`idia.lab.train`).

Submodules are imported explicitly; this package imports nothing so that
``python -m idia.lab.train`` (the training entry point) starts cleanly.
"""
