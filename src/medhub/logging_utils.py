"""The `medhub` logger: INFO by default so that the line saying which source served a model is seen.

Set MEDHUB_VERBOSITY=warning (or error/debug) to change the level.
"""

import logging
import os

_LOGGER_NAME = "medhub"


def get_logger(name: str | None = None) -> logging.Logger:
    root = logging.getLogger(_LOGGER_NAME)
    if not getattr(root, "_medhub_configured", False):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[medhub] %(message)s"))
        root.addHandler(handler)
        root.setLevel(os.environ.get("MEDHUB_VERBOSITY", "info").upper())
        root.propagate = False
        root._medhub_configured = True
    return root if not name else logging.getLogger(f"{_LOGGER_NAME}.{name}")
