import json
import logging

from aiohttp.http_exceptions import BadHttpMessage

from collector.logs import JsonFormatter, MalformedRequestFilter


def record(exc: BaseException, name: str = "aiohttp.server") -> logging.LogRecord:
    try:
        raise exc
    except BaseException as error:
        import sys

        return logging.LogRecord(name, logging.ERROR, __file__, 1, "Error handling request from %s",
                                 ("1.2.3.4",), sys.exc_info() if error else None)


def test_a_refused_request_is_one_warning_line_without_traceback():
    entry = record(BadHttpMessage("Invalid header"))
    assert MalformedRequestFilter().filter(entry)
    line = json.loads(JsonFormatter().format(entry))
    assert line["level"] == "warning"
    assert "Invalid header" in line["message"] and "1.2.3.4" in line["message"]
    assert "error" not in line  # no traceback


def test_errors_in_our_code_keep_their_traceback():
    entry = record(KeyError("bug"))
    MalformedRequestFilter().filter(entry)
    line = json.loads(JsonFormatter().format(entry))
    assert line["level"] == "error"
    assert "KeyError" in line["error"]


def test_json_lines_carry_extra_fields():
    entry = logging.LogRecord("collector", logging.INFO, __file__, 1, "delivered %d", (3,), None)
    entry.destination = "archive"
    line = json.loads(JsonFormatter().format(entry))
    assert line["message"] == "delivered 3" and line["destination"] == "archive"
