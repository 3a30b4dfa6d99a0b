"""Serving: a model behind a zero-shot HTTP API (``idia serve``), and a web page for people
who want to know whether a model knows them (``idia web``).

The API side has no dependency beyond FastAPI; the web page needs Gradio (``pip install
idia[web]``) and is imported only when used.
"""

from idia.serve.api import Limits, ZeroShotService, create_app, running_server

__all__ = ["Limits", "ZeroShotService", "create_app", "running_server"]
