"""One logging set-up for every process of the platform."""

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr (the local stack redirects it to the component's log file)."""
    root = logging.getLogger()
    if not any(getattr(h, "_allezon", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._allezon = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
