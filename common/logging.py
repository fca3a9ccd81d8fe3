"""One logging set-up for every process of the platform.

Two formats (LOG_FORMAT, common/settings.py LoggingSettings): `text`, one
readable line per record (the default), and `json`, one JSON object per line
with `time`, `level`, `logger`, `process`, `message` and, when there is one,
`exception` (the formatted traceback), for log collectors that parse lines.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"
LOG_FORMATS = ("text", "json")
# uvicorn's own loggers: in the JSON format they go through the root handler,
# so that the server's lines are JSON too.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON (newlines in the message or traceback are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            # Cached like logging.Formatter does, for other handlers of the same record.
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a message is already a str; this only guards odd extras.
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: str = "text") -> logging.Formatter:
    """The formatter of `log_format` ("text" or "json")."""
    kind = log_format.lower()
    if kind == "json":
        return JsonFormatter()
    if kind == "text":
        return logging.Formatter(FORMAT)
    raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")


def make_handler(log_format: str = "text") -> logging.Handler:
    """The platform's stderr handler (marked, so that it is installed once per process).

    Also the handler factory of uvicorn_log_config() (logging.config's "()" key).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler._allezon = True  # type: ignore[attr-defined]
    return handler


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Log to stderr (the local stack redirects it to the component's log file)."""
    fmt = formatter(log_format)  # a bad LOG_FORMAT fails here, before anything changes
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_allezon", False)]
    if ours:
        for handler in ours:
            handler.setFormatter(fmt)
    else:
        handler = make_handler(log_format)
        root.addHandler(handler)
    root.setLevel(level.upper())
    if log_format.lower() == "json":
        for name in UVICORN_LOGGERS:
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True


def uvicorn_log_config(level: str = "INFO", log_format: str = "text") -> dict[str, Any]:
    """A logging.config dict for uvicorn.run(log_config=...): the root handler
    in `log_format`, uvicorn's loggers through it, so even the lines uvicorn
    logs before the app starts are in that format."""
    formatter(log_format)  # validate
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"allezon": {"()": f"{__name__}.make_handler", "log_format": log_format}},
        "root": {"handlers": ["allezon"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
    }
