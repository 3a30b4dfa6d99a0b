"""idia's version, in a module of its own so that any module can record it without importing
the package's facade (``idia/__init__`` imports the engine, which imports most of idia)."""

__version__ = "0.1.0"
