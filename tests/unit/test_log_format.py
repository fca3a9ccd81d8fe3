"""LOG_FORMAT=json: every record, and an exception's traceback, as one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
from collections.abc import Iterator

import pytest

from common.logging import FORMAT, JsonFormatter, configure_logging, formatter, uvicorn_log_config
from common.settings import LoggingSettings

FIELDS = {"time", "level", "logger", "process", "message"}


def record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value\nsecond line")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("allezon.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_a_record_is_one_json_line_with_the_fields() -> None:
    line = JsonFormatter().format(record("tag %s refused\nwith a newline", "cookie/1"))
    assert "\n" not in line
    entry = json.loads(line)
    assert set(entry) == FIELDS
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "allezon.test"
    assert isinstance(entry["process"], int)
    assert entry["message"] == "tag cookie/1 refused\nwith a newline"
    assert entry["time"].endswith("Z") and "T" in entry["time"]


def test_an_exception_is_in_the_json_line() -> None:
    line = JsonFormatter().format(record("failed", exc=True))
    assert "\n" not in line
    entry = json.loads(line)
    assert set(entry) == FIELDS | {"exception"}
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].rstrip().endswith("ValueError: bad value\nsecond line")


def test_text_stays_the_default() -> None:
    assert LoggingSettings().log_format == "text"
    text = formatter("text")
    assert type(text) is logging.Formatter and text._fmt == FORMAT
    assert isinstance(formatter("JSON"), JsonFormatter)


def test_the_setting_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "Json")
    assert LoggingSettings().log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        LoggingSettings()
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        formatter("xml")


@pytest.fixture
def clean_logging() -> Iterator[None]:
    """Put the root and uvicorn loggers back as they were."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate, logging.getLogger(n).level)
             for n in names}
    yield
    for n, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(n)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


def _our_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_allezon", False)]


def test_configure_logging_switches_the_one_handler(clean_logging: None) -> None:
    configure_logging("INFO", "text")
    configure_logging("DEBUG", "json")
    ours = _our_handlers()
    assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter)
    assert logging.getLogger().level == logging.DEBUG
    # uvicorn's lines go through the same JSON handler.
    assert logging.getLogger("uvicorn.error").handlers == [] and logging.getLogger("uvicorn").propagate


def test_uvicorn_lines_are_json_from_the_first(clean_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logging.config.dictConfig(uvicorn_log_config("INFO", "json"))
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    configure_logging("INFO", "json")  # the app's own set-up afterwards adds no second handler
    assert len(_our_handlers()) == 1
    logging.getLogger("query_api").error("x")
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["Started server process [42]", "x"]
    assert json.loads(lines[0])["logger"] == "uvicorn.error"
