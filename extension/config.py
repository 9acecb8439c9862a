"""Configuration from `LAMBDASCOPE_*` environment variables (docs/architecture.md section 6).

`load_config` is pure: it takes the environment as a mapping and returns the settings plus one
message per invalid value, so an invalid value falls back to its default with a clear log line
instead of stopping the agent (a broken extension would break the function's init).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

COLLECTOR_URL = "LAMBDASCOPE_COLLECTOR_URL"
"""Base URL of the collector (http or https). Unset: the agent only counts what it would send.
`https://` verifies the collector's certificate and host name (system CA store, or
LAMBDASCOPE_CA_BUNDLE). `http://` to a host that is not loopback (127.0.0.0/8, ::1, localhost)
while LAMBDASCOPE_TOKEN is set is refused (nothing is sent, as if unset) unless
LAMBDASCOPE_ALLOW_INSECURE_HTTP=1."""
TOKEN = "LAMBDASCOPE_TOKEN"
"""Bearer token sent as `Authorization: Bearer <token>` with every batch."""
CA_BUNDLE = "LAMBDASCOPE_CA_BUNDLE"
"""Path of a PEM file of CA certificates that an https collector's certificate must chain to,
instead of the system's CA store (a collector with a private CA). A file that cannot be read or
holds no certificate: one log line, and the system store is used."""
ALLOW_INSECURE_HTTP = "LAMBDASCOPE_ALLOW_INSECURE_HTTP"
"""`1`: send LAMBDASCOPE_TOKEN over plain `http://` to a host that is not loopback (anyone on
the path can read it). Unset or `0`: such a collector URL is refused and nothing is sent."""
LISTEN_HOST = "LAMBDASCOPE_LISTEN_HOST"
"""Address the Telemetry listener binds; default `sandbox.localdomain` if it resolves, else the
host of `AWS_LAMBDA_RUNTIME_API`."""
TELEMETRY_PORT = "LAMBDASCOPE_TELEMETRY_PORT"
"""Telemetry listener port (default 4243; 0 picks a free port, handy for tests)."""
LOG_LEVEL = "LAMBDASCOPE_LOG_LEVEL"
"""DEBUG, INFO, WARNING (default) or ERROR. Each line written becomes `extension` telemetry."""
FLUSH_POLICY = "LAMBDASCOPE_FLUSH_POLICY"
"""`background` (default): send on a background thread at an INVOKE wake-up (at most once per
LAMBDASCOPE_FLUSH_INTERVAL_MS), periodically and at SHUTDOWN; costs no post-runtime time, but
an invocation's data waits for a later wake-up (hours, for a rarely invoked function).
`end`: after the runtime finished (platform.runtimeDone), send before calling `next`; data
leaves at once, and each invocation pays that send (bounded by
LAMBDASCOPE_END_FLUSH_TIMEOUT_MS) as post-runtime duration."""
END_FLUSH_TIMEOUT_MS = "LAMBDASCOPE_END_FLUSH_TIMEOUT_MS"
"""With the `end` policy, the most post-runtime time one flush may take (default 300)."""
FLUSH_INTERVAL_MS = "LAMBDASCOPE_FLUSH_INTERVAL_MS"
"""The background policy's send interval (default 1000): INVOKE wake-ups send only when the last
send is this old (or a batch is full), and data buffered this long while the environment runs
is sent then (long invocations)."""
INVOKE_REPORT_WAIT_MS = "LAMBDASCOPE_INVOKE_REPORT_WAIT_MS"
"""At an INVOKE wake-up, how long the background sender waits for the previous invocation's
`platform.report` before it sends (default 50). Costs the function nothing: `next` is not
delayed."""
SHUTDOWN_REPORT_WAIT_MS = "LAMBDASCOPE_SHUTDOWN_REPORT_WAIT_MS"
"""At SHUTDOWN, how long to wait for the last invocation's `platform.report` (default 300)."""
SEND_TIMEOUT_MS = "LAMBDASCOPE_SEND_TIMEOUT_MS"
"""Socket timeout of one request to the collector (default 3000)."""
BUFFER_MAX_EVENTS = "LAMBDASCOPE_BUFFER_MAX_EVENTS"
"""Telemetry events held in memory before the oldest are dropped (default 10000)."""
BUFFER_MAX_BYTES = "LAMBDASCOPE_BUFFER_MAX_BYTES"
"""JSON bytes of telemetry held in memory before the oldest are dropped (default 4 MiB)."""
PENDING_MAX_BYTES = "LAMBDASCOPE_PENDING_MAX_BYTES"
"""Compressed bytes of unsent batches kept in memory for retry (default 2 MiB)."""
BATCH_MAX_EVENTS = "LAMBDASCOPE_BATCH_MAX_EVENTS"
"""Telemetry events per batch (default 5000)."""
BATCH_MAX_BYTES = "LAMBDASCOPE_BATCH_MAX_BYTES"
"""Uncompressed JSON bytes of telemetry per batch (default 1 MiB)."""
TELEMETRY_MAX_ITEMS = "LAMBDASCOPE_TELEMETRY_MAX_ITEMS"
"""Telemetry API buffering maxItems (1000-10000, default 1000)."""
TELEMETRY_MAX_BYTES = "LAMBDASCOPE_TELEMETRY_MAX_BYTES"
"""Telemetry API buffering maxBytes (262144-1048576, default 262144)."""
TELEMETRY_TIMEOUT_MS = "LAMBDASCOPE_TELEMETRY_TIMEOUT_MS"
"""Telemetry API buffering timeoutMs (25-30000; default 100, or 25 with the `end` flush policy,
which waits for each invocation's runtimeDone before calling `next`)."""
SPOOL_DIR = "LAMBDASCOPE_SPOOL_DIR"
"""Folder for batches the collector did not take (default `$TMPDIR` or /tmp, then
`lambdascope-spool/<function name>`: emulated environments on one machine share /tmp)."""
SPOOL_MAX_BYTES = "LAMBDASCOPE_SPOOL_MAX_BYTES"
"""Bytes of spooled batches on disk before the oldest are dropped (default 16 MiB; 0 disables
the spool). /tmp is the function's too: the default leaves nearly all of it to the function."""
PROC_SAMPLE_INTERVAL_MS = "LAMBDASCOPE_PROC_SAMPLE_INTERVAL_MS"
"""How often /proc is sampled during an invocation (default 100; 0 disables sampling)."""
BACKGROUND_NICE = "LAMBDASCOPE_BACKGROUND_NICE"
"""How much lower than the function the sender, sampler and telemetry listener threads run
(nice value added, 0-19, default 10; 0 keeps them at the function's priority)."""
OTLP_PORT = "LAMBDASCOPE_OTLP_PORT"
"""Port of the local OTLP/HTTP receiver (default 4318, OpenTelemetry's; 0 picks a free port;
`off` disables it). It binds LAMBDASCOPE_LISTEN_HOST, else the host of AWS_LAMBDA_RUNTIME_API
(127.0.0.1 in Lambda: where the SDK's default `localhost:4318` points)."""
OTLP_MAX_BYTES = "LAMBDASCOPE_OTLP_MAX_BYTES"
"""Largest OTLP export request accepted, after gzip decompression (default 4 MiB; 413 above)."""
OTLP_BUFFER_MAX_BYTES = "LAMBDASCOPE_OTLP_BUFFER_MAX_BYTES"
"""Bytes of OTLP payloads held in memory before the oldest are dropped (default 4 MiB)."""
REDACT = "LAMBDASCOPE_REDACT"
"""Comma-separated regular expressions; matches in `function` and `extension` log lines are
replaced by `[REDACTED]` before they leave the sandbox. Built-in patterns (AWS access key ids,
AWS secret keys, bearer tokens, `password=`/`secret=`/`token=`/`api_key=` values) always apply.
A comma inside a pattern is written `\\,`."""
TAGS = "LAMBDASCOPE_TAGS"
"""The function's tags for alert-rule selectors, `key=value` pairs separated by commas
(`team=payments,tier=critical`); Lambda does not show a function its own tags, so set them
here (Terraform: `join(",", [for k, v in var.tags : "${k}=${v}"])`). At most 50 tags; keys up
to 128 and values up to 256 characters, as Lambda's own."""
MAX_TAGS = 50
LOG_SAMPLE_RATE = "LAMBDASCOPE_LOG_SAMPLE_RATE"
"""Share of invocations whose `function` log lines are kept (0..1, default 1). Decided per
request id, so an invocation's lines are all kept or all dropped; ERROR, traceback, timeout and
out-of-memory lines are always kept; platform events are never sampled."""

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR")
FLUSH_POLICIES = ("background", "end")


class Config:
    """The agent's settings; every attribute has a working default."""

    __slots__ = (
        "collector_url",
        "token",
        "ca_bundle",
        "allow_insecure_http",
        "listen_host",
        "telemetry_port",
        "log_level",
        "flush_policy",
        "end_flush_timeout_ms",
        "flush_interval_ms",
        "invoke_report_wait_ms",
        "shutdown_report_wait_ms",
        "send_timeout_ms",
        "buffer_max_events",
        "buffer_max_bytes",
        "pending_max_bytes",
        "batch_max_events",
        "batch_max_bytes",
        "telemetry_max_items",
        "telemetry_max_bytes",
        "telemetry_timeout_ms",
        "spool_dir",
        "spool_max_bytes",
        "proc_sample_interval_ms",
        "background_nice",
        "otlp_port",
        "otlp_max_bytes",
        "otlp_buffer_max_bytes",
        "redact_patterns",
        "log_sample_rate",
        "tags",
    )

    def __init__(self) -> None:
        self.collector_url: str | None = None
        self.token: str | None = None
        self.ca_bundle: str | None = None  # None: the system's CA store
        self.allow_insecure_http = False
        self.listen_host: str | None = None
        self.telemetry_port = 4243
        self.log_level = "WARNING"
        self.flush_policy = "background"
        self.end_flush_timeout_ms = 300
        self.flush_interval_ms = 1000
        self.invoke_report_wait_ms = 50
        self.shutdown_report_wait_ms = 300
        self.send_timeout_ms = 3000
        self.buffer_max_events = 10000
        self.buffer_max_bytes = 4 * 1024 * 1024
        self.pending_max_bytes = 2 * 1024 * 1024
        self.batch_max_events = 5000
        self.batch_max_bytes = 1024 * 1024
        self.telemetry_max_items = 1000
        self.telemetry_max_bytes = 262144
        self.telemetry_timeout_ms = 100
        self.spool_dir: str | None = None  # None: default_spool_dir()
        self.spool_max_bytes = 16 * 1024 * 1024
        self.proc_sample_interval_ms = 100
        self.background_nice = 10
        self.otlp_port: int | None = 4318  # None: receiver disabled
        self.otlp_max_bytes = 4 * 1024 * 1024
        self.otlp_buffer_max_bytes = 4 * 1024 * 1024
        # Raw texts: compiled on the listener's thread (importing `re` costs start-up time).
        self.redact_patterns: tuple[str, ...] = ()
        self.log_sample_rate = 1.0
        self.tags: dict[str, str] = {}

    def __repr__(self) -> str:
        shown = []
        for name in self.__slots__:
            value = getattr(self, name)
            if name == "token" and value:
                value = "***"
            shown.append("%s=%r" % (name, value))
        return "Config(%s)" % ", ".join(shown)


def _int_setting(
    environ: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int,
    problems: list[str],
) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        problems.append("%s=%r is not a whole number; using the default %d" % (name, raw, default))
        return default
    if value < low or value > high:
        problems.append(
            "%s=%d is outside %d..%d; using the default %d" % (name, value, low, high, default)
        )
        return default
    return value


def load_config(environ: Mapping[str, str]) -> tuple[Config, list[str]]:
    """Read the settings from `environ`; returns them and one message per ignored value."""
    config = Config()
    problems: list[str] = []

    url = (environ.get(COLLECTOR_URL) or "").strip()
    if url:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
            problems.append(
                "%s=%r is not an http:// or https:// URL; nothing will be sent "
                "(set it to the collector's base URL, e.g. http://collector:4320)"
                % (COLLECTOR_URL, url)
            )
        else:
            try:
                parse_url(url)
            except ValueError:
                # Otherwise every send would fail on the port, retried for the sandbox's life.
                problems.append(
                    "%s=%r has an invalid port; nothing will be sent "
                    "(set it to the collector's base URL, e.g. http://collector:4320)"
                    % (COLLECTOR_URL, url)
                )
            else:
                config.collector_url = url.rstrip("/")
    config.token = environ.get(TOKEN) or None
    config.ca_bundle = (environ.get(CA_BUNDLE) or "").strip() or None
    config.allow_insecure_http = _flag_setting(environ, ALLOW_INSECURE_HTTP, problems)
    if (
        config.collector_url
        and config.token
        and not config.allow_insecure_http
        and sends_token_in_clear(config.collector_url)
    ):
        # A configuration error, not a send failure: the token must not leave the sandbox in
        # clear even once, so the extension runs as if no collector were set.
        problems.append(
            "%s is http:// to a non-loopback host and %s is set: refusing to send the token in "
            "clear; use https:// or set %s=1 (%s; nothing will be sent)"
            % (COLLECTOR_URL, TOKEN, ALLOW_INSECURE_HTTP, config.collector_url)
        )
        config.collector_url = None
    config.listen_host = (environ.get(LISTEN_HOST) or "").strip() or None

    level = (environ.get(LOG_LEVEL) or "").strip().upper()
    if level:
        if level in _LOG_LEVELS:
            config.log_level = "WARNING" if level == "WARN" else level
        else:
            problems.append(
                "%s=%r is not one of DEBUG, INFO, WARNING, ERROR; using WARNING"
                % (LOG_LEVEL, level)
            )

    policy = (environ.get(FLUSH_POLICY) or "").strip().lower()
    if policy:
        if policy in FLUSH_POLICIES:
            config.flush_policy = policy
        else:
            problems.append(
                "%s=%r is not one of %s; using background" % (FLUSH_POLICY, policy, FLUSH_POLICIES)
            )

    c = config
    c.end_flush_timeout_ms = _int_setting(
        environ, END_FLUSH_TIMEOUT_MS, c.end_flush_timeout_ms, 10, 10000, problems
    )
    c.telemetry_port = _int_setting(environ, TELEMETRY_PORT, c.telemetry_port, 0, 65535, problems)
    c.flush_interval_ms = _int_setting(
        environ, FLUSH_INTERVAL_MS, c.flush_interval_ms, 50, 600000, problems
    )
    c.invoke_report_wait_ms = _int_setting(
        environ, INVOKE_REPORT_WAIT_MS, c.invoke_report_wait_ms, 0, 10000, problems
    )
    c.shutdown_report_wait_ms = _int_setting(
        environ, SHUTDOWN_REPORT_WAIT_MS, c.shutdown_report_wait_ms, 0, 1500, problems
    )
    c.send_timeout_ms = _int_setting(
        environ, SEND_TIMEOUT_MS, c.send_timeout_ms, 100, 60000, problems
    )
    c.buffer_max_events = _int_setting(
        environ, BUFFER_MAX_EVENTS, c.buffer_max_events, 10, 1000000, problems
    )
    c.buffer_max_bytes = _int_setting(
        environ, BUFFER_MAX_BYTES, c.buffer_max_bytes, 4096, 1 << 30, problems
    )
    c.pending_max_bytes = _int_setting(
        environ, PENDING_MAX_BYTES, c.pending_max_bytes, 0, 1 << 30, problems
    )
    c.batch_max_events = _int_setting(
        environ, BATCH_MAX_EVENTS, c.batch_max_events, 1, 100000, problems
    )
    c.batch_max_bytes = _int_setting(
        environ, BATCH_MAX_BYTES, c.batch_max_bytes, 1024, 64 * 1024 * 1024, problems
    )
    c.telemetry_max_items = _int_setting(
        environ, TELEMETRY_MAX_ITEMS, c.telemetry_max_items, 1000, 10000, problems
    )
    c.telemetry_max_bytes = _int_setting(
        environ, TELEMETRY_MAX_BYTES, c.telemetry_max_bytes, 262144, 1048576, problems
    )
    # Each delivery is an HTTP POST the platform makes into the sandbox while the function
    # runs: the background policy ships at most once a second, so it takes them 4x less often.
    # The end policy waits for runtimeDone before `next`: its delivery delay is billed.
    c.telemetry_timeout_ms = _int_setting(
        environ,
        TELEMETRY_TIMEOUT_MS,
        25 if c.flush_policy == "end" else c.telemetry_timeout_ms,
        25,
        30000,
        problems,
    )
    c.spool_dir = (environ.get(SPOOL_DIR) or "").strip() or None
    c.spool_max_bytes = _int_setting(
        environ, SPOOL_MAX_BYTES, c.spool_max_bytes, 0, 1 << 34, problems
    )
    c.proc_sample_interval_ms = _int_setting(
        environ, PROC_SAMPLE_INTERVAL_MS, c.proc_sample_interval_ms, 0, 60000, problems
    )
    c.background_nice = _int_setting(environ, BACKGROUND_NICE, c.background_nice, 0, 19, problems)
    otlp_port = (environ.get(OTLP_PORT) or "").strip().lower()
    if otlp_port in ("off", "false", "disabled", "none"):
        c.otlp_port = None
    else:
        c.otlp_port = _int_setting(environ, OTLP_PORT, 4318, 0, 65535, problems)
    c.otlp_max_bytes = _int_setting(
        environ, OTLP_MAX_BYTES, c.otlp_max_bytes, 1024, 64 * 1024 * 1024, problems
    )
    c.otlp_buffer_max_bytes = _int_setting(
        environ, OTLP_BUFFER_MAX_BYTES, c.otlp_buffer_max_bytes, 4096, 1 << 30, problems
    )
    c.redact_patterns = split_patterns(environ.get(REDACT) or "")
    c.log_sample_rate = _rate_setting(environ, LOG_SAMPLE_RATE, c.log_sample_rate, problems)
    c.tags = parse_tags(environ.get(TAGS) or "", problems)
    return config, problems


def parse_url(url: str) -> tuple[bool, str, int, str]:
    """`https://host:port/base` -> (tls, host, port, base path without trailing slash).
    Raises ValueError for a port that is not a number in 1..65535."""
    scheme, _, rest = url.partition("://")
    tls = scheme.lower() == "https"
    hostport, slash, path = rest.partition("/")
    base = ("/" + path).rstrip("/") if slash else ""
    if hostport.startswith("["):
        host, _, port_text = hostport[1:].partition("]")
        port_text = port_text.lstrip(":")
    else:
        host, sep, port_text = hostport.rpartition(":")
        if not sep:
            host, port_text = hostport, ""
    port = int(port_text) if port_text else (443 if tls else 80)
    if not 0 < port < 65536:
        raise ValueError("port %d outside 1..65535" % port)
    return tls, host, port, base


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 (any spelling, also ::ffff:127.x.y.z) or `localhost`. Names are not
    resolved: any other name counts as remote, the safe side for a token."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost":
        return True
    parts = name.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
        return parts[0] == "127"
    if ":" in name:
        import socket  # already loaded by httpio on the start-up path

        try:
            packed = socket.inet_pton(socket.AF_INET6, name)
        except (OSError, ValueError):
            return False
        if packed == bytes(15) + b"\x01":
            return True
        return packed[:12] == bytes(10) + b"\xff\xff" and packed[12] == 127
    return False


def sends_token_in_clear(url: str) -> bool:
    """Whether a token sent to `url` would cross a network unencrypted: http:// to a host
    that is not loopback (loopback never leaves the sandbox)."""
    tls, host, _port, _base = parse_url(url)
    return not tls and not is_loopback_host(host)


def ca_bundle_problem(path: str) -> str | None:
    """A message when `path` cannot serve as LAMBDASCOPE_CA_BUNDLE (missing, unreadable, no
    PEM certificate in it), else None. Reads the file without `ssl`: that import is left to the
    first https send."""
    try:
        with open(path, "rb") as pem:
            text = pem.read(16 * 1024 * 1024)  # bounded: a path to a device must not hang
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return (
            "%s=%r cannot be read (%s); verifying the collector against the system's CA "
            "store instead" % (CA_BUNDLE, path, reason)
        )
    if b"-----BEGIN CERTIFICATE-----" not in text and b"-----BEGIN TRUSTED CERTIFICATE" not in text:
        return (
            "%s=%r holds no PEM certificate (-----BEGIN CERTIFICATE-----); verifying the "
            "collector against the system's CA store instead" % (CA_BUNDLE, path)
        )
    return None


def _flag_setting(environ: Mapping[str, str], name: str, problems: list[str]) -> bool:
    raw = (environ.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    problems.append("%s=%r is not 1 or 0; using 0" % (name, raw))
    return False


def parse_tags(text: str, problems: list[str]) -> dict[str, str]:
    """`team=payments, tier=critical` -> {"team": "payments", "tier": "critical"}; a malformed
    pair is reported in `problems` and skipped, the others are kept."""
    tags: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or len(key) > 128 or len(value) > 256:
            problems.append(
                "%s: %r is not key=value (key 1-128, value up to 256 characters); skipped"
                % (TAGS, pair.strip()[:80])
            )
            continue
        if len(tags) >= MAX_TAGS:
            problems.append("%s: more than %d tags; the rest are skipped" % (TAGS, MAX_TAGS))
            break
        tags[key] = value
    return tags


def split_patterns(text: str) -> tuple[str, ...]:
    """`a,b\\,c` -> ("a", "b,c"): commas separate patterns, `\\,` is a literal comma."""
    placeholder = "\x00"
    parts = text.replace("\\,", placeholder).split(",")
    return tuple(p.replace(placeholder, ",").strip() for p in parts if p.strip())


def _rate_setting(
    environ: Mapping[str, str], name: str, default: float, problems: list[str]
) -> float:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append("%s=%r is not a number; using the default %g" % (name, raw, default))
        return default
    if not 0.0 <= value <= 1.0:  # also refuses nan
        problems.append("%s=%r is outside 0..1; using the default %g" % (name, raw, default))
        return default
    return value


def runtime_api_host(runtime_api: str) -> str:
    """The host part of `AWS_LAMBDA_RUNTIME_API` (`127.0.0.1:9001` -> `127.0.0.1`)."""
    value = runtime_api.strip()
    if value.startswith("["):  # [::1]:9001
        return value[1 : value.find("]")] if "]" in value else value.strip("[")
    host, _, _port = value.rpartition(":")
    return host or value


def default_spool_dir(environ: Mapping[str, str], function_name: str) -> str:
    """`$TMPDIR` (else /tmp) / lambdascope-spool / <function name, made path-safe>."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in function_name) or "function"
    base = (environ.get("TMPDIR") or "/tmp").rstrip("/") or "/tmp"
    return base + "/lambdascope-spool/" + safe.lstrip(".")
