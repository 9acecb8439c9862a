"""Log lines -> ``logs`` rows: the function's lines and the extensions' lines.

Pure: no I/O, no clock. A Text-format line gives its level and request id when awslambdaric's
logging wrote it (``[LEVEL]\t<time>\t<request id>\t<message>``), a level for the runtime's
unhandled-exception line (``[ERROR] Type: message`` and the traceback), a request id for
Lambda's timeout and crash lines, and neither for ``print`` output. A JSON log line (Lambda's
JSON format, Powertools, python-json-logger, structlog, pino) gives them from whichever
logger's keys it has; its other keys become attributes.

Text-format ``function`` lines carry no request id unless awslambdaric's logging wrote them,
so the rest are attributed by the invocation window: from ``platform.start(X)`` to
``platform.runtimeDone(X)`` (to ``platform.report(X)`` in a Managed Instances environment,
which sends no runtimeDone), in delivery order (collector/telemetry.py keeps the windows).
A Managed Instances environment runs several requests at once: a line that names its request
(JSON ``requestId``, awslambdaric's prefix, platform lines) goes to that request, and one that
does not goes to the open invocation only when exactly one is open; otherwise it is stored
with ``request_id = ''`` and counted (``NormalizedBatch.unattributed_lines``), not guessed.
``extension`` lines are never attributed: what an extension writes during an invocation is
not the function's log.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from lambdascope.collector.batch_rows import BatchBuilder, EventResult, Window
from lambdascope.collector.fields import BatchError, json_kind

__all__ = ["LOG_HANDLERS", "TextLine", "parse_text_line"]

#: awslambdaric's Text format: ``[LEVEL]\t<ts>Z\t<request id>\t<message>``.
_RIC_LINE = re.compile(
    r"^\[(?P<level>[A-Za-z]+)\]\t(?P<ts>[0-9T:.\-+Z]+)\t(?P<rid>[^\t]*)\t(?P<msg>.*)$", re.S
)
#: awslambdaric's line for an exception that escaped the handler (or a ``Runtime.*`` error):
#: ``[ERROR] ValueError: boom`` then ``Traceback (most recent call last):`` and the frames,
#: joined with ``\r`` on stdout and ``\n`` in a telemetry frame; it names no time and no
#: request id. Custom logging formats such as ``[%(levelname)s] %(message)s`` look the same.
#: Upper-case level names only: a line starting ``[Error]`` is more likely prose.
_LEVEL_PREFIX_LINE = re.compile(
    r"^\[(?P<level>ERROR|WARNING|WARN|INFO|DEBUG|CRITICAL|FATAL)\](?: |\r\n?|\n|\Z)(?P<msg>.*)",
    re.S,
)
#: lambdascope's extension writes ``[lambdascope] LEVEL message`` (extension/log.py).
_LAMBDASCOPE_LINE = re.compile(r"^\[lambdascope\] (?P<level>DEBUG|INFO|WARNING|ERROR) ")
#: Lambda's own timeout line: ``<ISO ts> <request id> Task timed out after 3.00 seconds``.
_TIMEOUT_LINE = re.compile(
    r"^\S+\s+(?P<rid>[0-9A-Za-z][0-9A-Za-z-]{7,})\s+Task timed out after [0-9.]+ seconds"
)
#: ``RequestId: <id> Error: Runtime exited with error: signal: killed`` (crash / OOM).
_REQUEST_ID_ERROR_LINE = re.compile(r"^RequestId: (?P<rid>\S+) Error: ")


class TextLine(NamedTuple):
    """What one Text-format line says: its level ("" if none), request id and message."""

    level: str
    request_id: str | None
    message: str


#: Level spellings stored under one name (Python's): WARN and FATAL are the Node, Java and Go
#: loggers' and Lambda's JSON format's names for WARNING and CRITICAL.
_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
#: The usual spellings and how each is stored: a dict look-up on the hot path, not a call.
_LEVELS = {
    name: _LEVEL_ALIASES.get(name, name)
    for name in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL")
}
#: pino's and bunyan's numeric levels (the usual JSON loggers of Node.js functions). Python's
#: own numbers differ (30 is WARNING there) but Python formatters write the name instead.
_NUMERIC_LEVELS = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARNING", 50: "ERROR", 60: "CRITICAL"}


def _level_name(name: str) -> str:
    """``name`` upper-cased, with WARN and FATAL under Python's names."""
    upper = name.upper()
    return _LEVEL_ALIASES.get(upper, upper)


def parse_text_line(raw: str) -> TextLine:
    """Split one Text-format line into level, request id (when the line names one) and message.

    awslambdaric's logging lines carry both; its unhandled-exception line (``[ERROR] Type: msg``
    and the traceback) carries a level only; Lambda's timeout and crash lines carry the request
    id; anything else (``print`` output) carries neither. Lines without a request id are
    attributed by window.
    """
    line = raw[:-1] if raw.endswith("\n") else raw
    # This runs for every function line and most are print output: the bracket test keeps the
    # regular expressions off them, as the fixed words do for the two Lambda lines below.
    if line.startswith("["):
        match = _RIC_LINE.match(line)
        if match:
            level, _, request_id, message = match.groups()
            # awslambdaric joins a stack trace's lines with \r to keep them in one record.
            return TextLine(
                _LEVELS.get(level) or _level_name(level),
                request_id or None,
                message.replace("\r", "\n"),
            )
        match = _LEVEL_PREFIX_LINE.match(line)
        if match:
            level, message = match.groups()
            return TextLine(_LEVELS[level], None, message.replace("\r", "\n"))
    else:
        match = _TIMEOUT_LINE.match(line) if "Task timed out after" in line else None
        if match is None and line.startswith("RequestId: "):
            match = _REQUEST_ID_ERROR_LINE.match(line)
        if match:
            return TextLine("", match.group("rid"), line)
    return TextLine("", None, line.replace("\r", "\n"))


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


#: Where JSON loggers put the level, most common first: "level" (Lambda's JSON format,
#: Powertools, pino, zap, structlog), "levelname" (python-json-logger's default), "severity"
#: (Google Cloud's structured logging), "log.level" (Elastic's ECS loggers, a flat dotted key).
_LEVEL_KEYS = ("level", "levelname", "severity", "log.level")
#: Where they put the message: "message" (Lambda, Powertools, python-json-logger, ECS), "msg"
#: (pino, zap, bunyan), "event" (structlog), "errorMessage" (awslambdaric's JSON-format record
#: for an unhandled exception, which has no "message").
_MESSAGE_KEYS = ("message", "msg", "event", "errorMessage")
#: Where they put the request id: Lambda's JSON format, Powertools, Lambda's ``aws_request_id``
#: logging attribute as python-json-logger formats pick it up.
_REQUEST_ID_KEYS = ("requestId", "function_request_id", "aws_request_id")


def _structured_text(raw: str) -> dict[str, Any] | None:
    """A Text-format line that is itself a JSON log object (Powertools, structlog), else None."""
    # Most lines are not JSON: decide on the first character without copying the line.
    if not raw.startswith("{"):
        if not raw[:1].isspace():
            return None
        raw = raw.lstrip()
        if not raw.startswith("{"):
            return None
    text = raw.rstrip()
    if not text.endswith("}"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    # "message" or "msg" makes a log object; "event" and "errorMessage" are common payload
    # keys too (a printed API response), so those count only beside a level.
    if "message" in parsed or "msg" in parsed:
        return parsed
    if ("event" in parsed or "errorMessage" in parsed) and _level_key(parsed) is not None:
        return parsed
    return None


def _level_key(record: dict[str, Any]) -> str | None:
    for key in _LEVEL_KEYS:
        if key in record:
            return key
    return None


def _structured_level(value: Any) -> str:
    if isinstance(value, str):
        return _level_name(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        # pino/bunyan numbers by name; any other number kept as it is rather than guessed.
        return _NUMERIC_LEVELS.get(value, str(value))
    return ""


def _error_text(record: dict[str, Any]) -> str:
    """awslambdaric's JSON-format exception record as its Text format shows it (less the
    ``[ERROR]``): ``Type: message``, then the traceback."""
    text = _json_text(record.get("errorMessage", ""))
    error_type = record.get("errorType")
    if isinstance(error_type, str) and error_type:
        text = f"{error_type}: {text}" if text else error_type
    frames = record.get("stackTrace")
    if isinstance(frames, list) and frames and all(isinstance(f, str) for f in frames):
        text += "\nTraceback (most recent call last):\n" + "".join(frames).rstrip("\n")
    return text


def _log_structured(
    out: BatchBuilder, stream: str, record: dict[str, Any], when: int, window: Window
) -> None:
    """A JSON log object: level, request id and message from whichever logger's keys it has;
    the other keys become attributes. ``extension`` lines are never a request's."""
    used = ["timestamp"]
    request_id: Any = None
    if stream != "extension":
        for key in _REQUEST_ID_KEYS:
            request_id = record.get(key)
            if request_id:
                break
        if not isinstance(request_id, str) or not request_id:
            request_id = out.window_owner(window)
        # Kept out of the attributes as before; Powertools' function_request_id stays in them.
        used.append("requestId")
    level_key = _level_key(record)
    level = ""
    if level_key is not None:
        level = _structured_level(record[level_key])
        used.append(level_key)
    message_key = next((k for k in _MESSAGE_KEYS if k in record), "message")
    used.append(message_key)
    if message_key == "errorMessage":
        text = _error_text(record)
        used.append("stackTrace")  # now in the message; errorType stays an attribute
    else:
        text = _json_text(record.get(message_key, ""))
    if text.endswith("\n"):
        text = text[:-1]
    extra = {str(k): _json_text(v) for k, v in record.items() if k not in used and v is not None}
    out.log(when, request_id, stream, level, text, extra)


def _function_line(out: BatchBuilder, record: Any, when: int, window: Window) -> EventResult:
    if isinstance(record, str):
        structured = _structured_text(record)
        if structured is not None:
            _log_structured(out, "function", structured, when, window)
            return window, 0
        line = parse_text_line(record)
        request_id = line.request_id or out.window_owner(window)
        out.log(when, request_id, "function", line.level, line.message)
        if line.request_id and "Task timed out after" in line.message:
            out.timed_out.add(line.request_id)
        return window, 0
    if isinstance(record, dict):
        _log_structured(out, "function", record, when, window)
        return window, 0
    raise BatchError("", f"must be a log line string or a JSON log object, got {json_kind(record)}")


def _extension_line(out: BatchBuilder, record: Any, when: int, window: Window) -> EventResult:
    """What an extension (lambdascope's own or another) wrote: kept on its own stream and never
    attributed to the open invocation, whose log is the customer's function's.

    lambdascope's extension writes only here (Lambda and the emulator both turn an external
    extension's stdout and stderr into ``extension`` events). ``[lambdascope] ...`` lines on
    the ``function`` stream come from lambdascope_tracing inside the function (the timeout
    capture's "about to time out; stuck at ..."), which belong to the request: left alone.
    """
    if isinstance(record, str):
        structured = _structured_text(record)
        if structured is not None:
            _log_structured(out, "extension", structured, when, window)
            return window, 0
        line = parse_text_line(record)
        level = line.level
        if not level and line.message.startswith("[lambdascope] "):
            match = _LAMBDASCOPE_LINE.match(line.message)
            if match:
                # The whole line stays the message: its prefix says which extension wrote it.
                level = match.group("level")
        out.log(when, None, "extension", level, line.message)
        return window, 0
    if isinstance(record, dict):
        _log_structured(out, "extension", record, when, window)
        return window, 0
    raise BatchError("", f"must be a log line string or a JSON log object, got {json_kind(record)}")


#: The handler of each log event type: a line the function or an extension wrote.
LOG_HANDLERS: dict[str, Any] = {
    "function": _function_line,
    "extension": _extension_line,
}
