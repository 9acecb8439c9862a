"""The lambdascope extension's main loop, written as Lambda's lifecycle steps:

1. register with the Extensions API (INVOKE, SHUTDOWN; SHUTDOWN only in a Lambda Managed
   Instances environment, where extensions get no INVOKE event and requests overlap: there the
   Telemetry API's platform.start and platform.report open and close the invocation records);
2. start the Telemetry listener (background thread, answers 200 at once);
3. subscribe to the Telemetry API (platform, function, extension);
4. start the background sender;
5. loop on event/next: record each INVOKE and wake the sender; at SHUTDOWN flush within the
   deadline and exit 0.

Start-up cost is a feature: only json, socket, threading and this package load before the
first `next`; gzip (zlib), ssl and /proc reading load later, on the sender thread.
"""

from __future__ import annotations

import time

_IMPORTED_AT = time.perf_counter()

import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from . import __version__, log  # noqa: E402
from .batch import environment_info, invocation_record, new_id  # noqa: E402
from .buffer import TelemetryBuffer  # noqa: E402
from .config import (  # noqa: E402
    COLLECTOR_URL,
    ca_bundle_problem,
    default_spool_dir,
    load_config,
    runtime_api_host,
)
from .lambda_api import (  # noqa: E402
    MANAGED_INSTANCES_SCHEMA_VERSION,
    ExtensionsApi,
    LambdaApiError,
    telemetry_subscription,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .config import Config
    from .httpio import HttpServer
    from .listener import TelemetryHandler
    from .otlp import OtlpHandler
    from .shipper import Shipper

DEFAULT_NAME = "lambdascope"
SHUTDOWN_MARGIN_MS = 150  # exit this long before Lambda's SIGKILL at the SHUTDOWN deadline
# ... unless the final flush is still spooling then (a starved CPU): it gets until this long
# before the deadline, what it has not written by then is lost with the process.
SHUTDOWN_EXIT_MS = 50
NEXT_RETRIES = 3
REGISTER_RETRY_PAUSES_S = (0.02, 0.1)
#: AWS_LAMBDA_INITIALIZATION_TYPE of a Lambda Managed Instances environment.
MANAGED_INSTANCES = "lambda-managed-instances"


class _Terminated(Exception):
    """SIGTERM arrived (emulators and `docker stop` send it; Lambda sends SHUTDOWN)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


def now_ms() -> int:
    return int(time.time() * 1000)


class Agent:
    def __init__(self, name: str, config: Config, environ: Mapping[str, str]) -> None:
        self.name = name
        self.config = config
        self.environ = environ
        self.environment_id = new_id()
        #: Several requests run at once in this environment (Lambda Managed Instances).
        self.concurrent = environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == MANAGED_INSTANCES
        self.buffer = TelemetryBuffer(
            config.buffer_max_events,
            config.buffer_max_bytes,
            otlp_max_bytes=config.otlp_buffer_max_bytes,
            concurrent=self.concurrent,
        )
        if self.concurrent:
            # From the first delivery on, before the sampler starts on the setup thread.
            self.buffer.on_lifecycle = self.on_platform_event
        self.api: ExtensionsApi | None = None
        self.listener: HttpServer | None = None
        self.telemetry_handler: TelemetryHandler | None = None
        self.otlp_server: HttpServer | None = None
        self.otlp_handler: OtlpHandler | None = None
        self.shipper: Shipper | None = None
        self.sampler: Any = None
        self.ready_ms: float | None = None
        self.ready_epoch: float | None = None
        self.last_request_id: str | None = None
        self.invocations = 0
        #: Epoch ms the runtime process started (looked up after the first INVOKE, when it
        #: has surely started); at most a few looks, each a scan of /proc.
        self.runtime_started_at_ms: int | None = None
        self._runtime_start_looks = 0
        self._late_setup: threading.Thread | None = None
        self.subscribed = False
        # Post-runtime time this extension caused (only the `end` policy causes any).
        self.post_runtime_ms_total = 0.0
        self.post_runtime_ms_max = 0.0

    # 1. register ----------------------------------------------------------------------------
    def register(self) -> dict[str, Any]:
        runtime_api = self.environ.get("AWS_LAMBDA_RUNTIME_API", "")
        if not runtime_api:
            raise LambdaApiError(
                "AWS_LAMBDA_RUNTIME_API is not set: run the extension inside Lambda or the "
                "lambdascope emulator"
            )
        self.api = ExtensionsApi(runtime_api)
        # Retried briefly (not for 403: bad or duplicate name, registration closed): an API
        # that is still starting, or that has not yet noted this process as launched, would
        # otherwise fail the whole init; the success path pays nothing.
        events = ("SHUTDOWN",) if self.concurrent else ("INVOKE", "SHUTDOWN")
        for attempt, pause_s in enumerate(REGISTER_RETRY_PAUSES_S + (None,)):
            try:
                return self.api.register(self.name, events)
            except LambdaApiError as exc:
                if exc.status == 403 and "INVOKE" in events and "InvalidEventType" in str(exc):
                    # A platform that offers extensions no INVOKE event (Managed Instances)
                    # whose variable did not say so: run as there.
                    log.warning("INVOKE refused at register; recording from telemetry alone")
                    self._become_concurrent()
                    return self.api.register(self.name, ("SHUTDOWN",))
                if pause_s is None or exc.status == 403:
                    raise
                log.warning("register attempt %d failed, retrying: %s" % (attempt + 1, exc))
                time.sleep(pause_s)
        raise AssertionError("unreachable")

    def _become_concurrent(self) -> None:
        self.concurrent = True
        self.buffer.become_concurrent()
        self.buffer.on_lifecycle = self.on_platform_event

    # 2. listener ----------------------------------------------------------------------------
    def start_listener(self) -> int | None:
        from .listener import choose_listen_host, start_listener

        runtime_host = runtime_api_host(self.environ.get("AWS_LAMBDA_RUNTIME_API", ""))
        host = choose_listen_host(self.config.listen_host, runtime_host)
        from .logfilter import LogFilter  # the built-in redaction patterns always apply

        log_filter = LogFilter(
            self.config.redact_patterns, self.config.log_sample_rate, concurrent=self.concurrent
        )
        try:
            self.listener, self.telemetry_handler = start_listener(
                host,
                self.config.telemetry_port,
                self.buffer,
                log_filter,
                niceness=self.config.background_nice,
            )
        except OSError as exc:
            log.error(
                "cannot listen for telemetry on %s:%d (%s); running without telemetry. "
                "Set LAMBDASCOPE_TELEMETRY_PORT or LAMBDASCOPE_LISTEN_HOST to a free address."
                % (host, self.config.telemetry_port, exc)
            )
            return None
        return self.listener.port

    # 2b. local OTLP/HTTP receiver ------------------------------------------------------------
    def start_otlp_receiver(self) -> int | None:
        """Listen where the function's OpenTelemetry SDK exports by default: `localhost:4318`
        is the Runtime API's host in Lambda (127.0.0.1); under the emulator each environment
        has its own loopback address, given by AWS_LAMBDA_RUNTIME_API as well."""
        if self.config.otlp_port is None:
            return None
        from .otlp import start_receiver

        host = self.config.listen_host or runtime_api_host(
            self.environ.get("AWS_LAMBDA_RUNTIME_API", "")
        )
        try:
            self.otlp_server, self.otlp_handler = start_receiver(
                host or "127.0.0.1",
                self.config.otlp_port,
                self.buffer,
                self._otlp_request_id,
                self.config.otlp_max_bytes,
                open_request_ids=self.buffer.open_request_ids if self.concurrent else None,
            )
        except OSError as exc:
            log.error(
                "cannot listen for OTLP on %s:%d (%s); spans, logs and metrics from the "
                "function's OpenTelemetry SDK will not be received. Set LAMBDASCOPE_OTLP_PORT "
                "to a free port (and the SDK's OTEL_EXPORTER_OTLP_ENDPOINT to match) or `off`."
                % (host, self.config.otlp_port, exc)
            )
            return None
        return self.otlp_server.port

    # 3. subscribe ---------------------------------------------------------------------------
    def subscribe(self, port: int) -> bool:
        assert self.api is not None
        c = self.config
        body = telemetry_subscription(
            port,
            c.telemetry_max_items,
            c.telemetry_max_bytes,
            c.telemetry_timeout_ms,
            schema_version=MANAGED_INSTANCES_SCHEMA_VERSION if self.concurrent else None,
        )
        try:
            response = self.api.subscribe_telemetry(body)
        except LambdaApiError as exc:
            log.error("telemetry subscription failed: %s" % exc)
            return False
        if response.status != 200:
            log.warning(
                "telemetry subscription answered %d %s: no platform events or logs will be "
                "recorded (AWS's classic emulator and SAM local do not implement the Telemetry API)"
                % (response.status, response.body[:300].decode("utf-8", "replace"))
            )
            return False
        return True

    # 4. sender ------------------------------------------------------------------------------
    def start_shipper(self, register_body: Mapping[str, Any]) -> None:
        if not self.config.collector_url:
            # A URL that is set but unusable (malformed, or http:// that would expose the
            # token) was reported by load_config: one line says why, not two.
            if not (self.environ.get(COLLECTOR_URL) or "").strip():
                log.warning(
                    "%s is not set: telemetry is buffered and counted but not sent anywhere"
                    % COLLECTOR_URL
                )
            return
        from .poster import CollectorPoster
        from .shipper import Shipper
        from .spool import Spool

        ca_bundle = self.config.ca_bundle
        if ca_bundle and self.config.collector_url.lower().startswith("https:"):
            # Checked here, off the path to `next`, and without `ssl` (left to the first send).
            problem = ca_bundle_problem(ca_bundle)
            if problem is not None:
                log.warning(problem)
                ca_bundle = None

        environment = environment_info(
            register_body,
            self.environ,
            self.environment_id,
            os.uname().machine,
            tags=self.config.tags,
        )
        spool = None
        if self.config.spool_max_bytes > 0:
            directory = self.config.spool_dir or default_spool_dir(
                self.environ, environment["function_name"]
            )
            spool = Spool(directory, self.config.spool_max_bytes)
        poster = CollectorPoster(ca_bundle)
        https = self.config.collector_url.lower().startswith("https:")
        if https and self.config.flush_policy == "end":
            # Under `end` every send is billed post-runtime time: build the TLS context now,
            # on this thread, rather than on the first invocation's flush.
            poster.ssl_context()
        self.shipper = Shipper(
            self.config,
            self.buffer,
            environment,
            {"name": self.name, "version": __version__},
            post=poster,
            stats=self.self_stats,
            spool=spool,
        ).start()

    def start_sampler(self) -> None:
        if self.concurrent:
            self._start_environment_sampler()
            return
        if self.config.proc_sample_interval_ms <= 0:
            return
        from .procstats import ProcSampler

        self.sampler = ProcSampler(
            self.config.proc_sample_interval_ms / 1000.0,
            sink=self.buffer.add_invocation,
            niceness=self.config.background_nice,
            finished=self.buffer.runtime_done_arrived,
        ).start()

    def _start_environment_sampler(self) -> None:
        """Managed Instances: requests open and close on the Telemetry API's events, several at
        once; /proc figures are the environment's (procstats.EnvironmentSampler)."""
        if self.config.proc_sample_interval_ms > 0:
            from .procstats import EnvironmentSampler

            self.sampler = EnvironmentSampler(
                self.config.proc_sample_interval_ms / 1000.0,
                sink=self.buffer.add_invocation,
                niceness=self.config.background_nice,
            ).start()

    def on_platform_event(self, event: Mapping[str, Any]) -> None:
        """A platform.start or platform.report of a Managed Instances environment (on the
        listener's thread): open or close the request's record."""
        from .batch import telemetry_invocation_record

        record = telemetry_invocation_record(event)
        if record is None:
            return
        sampler = self.sampler
        if event.get("type") == "platform.start":
            self.invocations += 1
            if sampler is not None:
                sampler.open(record)
            else:
                self.buffer.add_invocation(record)
        elif sampler is not None:
            sampler.close(record["request_id"])

    def _otlp_request_id(self) -> str | None:
        """The request an OTLP export belongs to when it names none: the last INVOKE on
        demand; with overlapping requests the open one only when exactly one is open."""
        if self.concurrent:
            opened = self.buffer.open_request_ids()
            return opened[0] if len(opened) == 1 else None
        return self.last_request_id

    def self_stats(self) -> dict[str, Any]:
        from .procstats import self_usage

        stats: dict[str, Any] = self_usage()
        stats["startup_ms"] = self.ready_ms
        stats["process_startup_ms"] = process_startup_ms(self.environ, self.ready_epoch)
        stats["runtime_started_at_ms"] = self._runtime_started_at_ms()
        shipper = self.shipper
        spool = shipper.spool if shipper is not None else None
        stats["bytes_sent"] = shipper.bytes_sent if shipper else 0
        stats["dropped_events"] = self.buffer.dropped_events + (
            shipper.dropped_events if shipper else 0
        )
        stats["dropped_invocations"] = self.buffer.dropped_invocations
        stats["post_runtime_ms_total"] = round(self.post_runtime_ms_total, 3)
        stats["post_runtime_ms_max"] = round(self.post_runtime_ms_max, 3)
        stats["invocations"] = self.invocations
        if spool is not None:
            stats["spool_dropped_events"] = spool.dropped_events
        # Events here are Telemetry API events plus OTLP export requests.
        stats["events_received"] = self.buffer.received_events + self.buffer.received_otlp
        stats["events_sent"] = shipper.events_sent if shipper else 0
        stats["batches_sent"] = shipper.batches_sent if shipper else 0
        dropped = {"buffer_full": self.buffer.dropped_events}
        if self.otlp_handler is not None:
            dropped["otlp_buffer_full"] = self.buffer.dropped_otlp
        if shipper is not None:
            dropped.update(shipper.dropped_by_reason)
        if spool is not None:
            dropped["spool_full"] = spool.dropped_events
        stats["events_dropped"] = dropped
        stats["send_failures"] = shipper.send_failures if shipper else 0
        stats["send_retries"] = shipper.send_retries if shipper else 0
        stats["spooled_batches"] = shipper.spooled_batches if shipper else 0
        stats["spooled_bytes"] = shipper.spooled_bytes if shipper else 0
        if self.otlp_handler is not None:
            stats["otlp_received"] = self.buffer.received_otlp
            stats["otlp_rejected"] = self.otlp_handler.rejected
            stats["otlp_dropped"] = self.buffer.dropped_otlp
        log_filter = self.telemetry_handler.log_filter if self.telemetry_handler else None
        if log_filter is not None:
            stats["log_lines_redacted"] = log_filter.redacted_lines
            stats["log_lines_sampled_out"] = log_filter.sampled_out_lines
        return stats

    def _runtime_started_at_ms(self) -> int | None:
        # Called from the shipper's thread as it builds a batch, never on the INVOKE path.
        if (
            self.runtime_started_at_ms is None
            and self.invocations
            and self._runtime_start_looks < 3
        ):
            from .runtime_start import runtime_started_at_ms

            self._runtime_start_looks += 1
            self.runtime_started_at_ms = runtime_started_at_ms(
                self.environ.get("AWS_LAMBDA_RUNTIME_API", "")
            )
        return self.runtime_started_at_ms

    # 5. event loop --------------------------------------------------------------------------
    def on_invoke(self, event: Mapping[str, Any]) -> None:
        record = invocation_record(event, now_ms())
        # First: the OTLP receiver tags what arrives from now on with this request, and a fast
        # handler may export before the rest of this method has run.
        self.last_request_id = record["request_id"]
        self._wait_background()
        self.invocations += 1
        if self.sampler is not None:
            # The samples since the previous INVOKE describe the previous invocation; its
            # record was held back to carry them. The sampler thread does the /proc reads.
            self.sampler.rollover(record)
        else:
            self.buffer.add_invocation(record)
        end_policy = (
            self.config.flush_policy == "end" and self.shipper is not None and self.subscribed
        )
        if self.shipper is not None:
            self.shipper.notify_invoke(record["request_id"], wake=not end_policy)
        if end_policy:
            self._flush_at_end(record)

    def _flush_at_end(self, record: Mapping[str, Any]) -> None:
        """`end` policy: once the runtime is done, send before calling `next` (bounded)."""
        assert self.shipper is not None
        deadline_ms = record["deadline_ms"] or now_ms() + 900000
        wait_s = (deadline_ms - now_ms()) / 1000.0
        if not self.buffer.wait_for_runtime_done(record["request_id"], wait_s):
            return  # timed out: the data goes at the next wake-up or SHUTDOWN
        started = time.monotonic()
        self._finish_invocation()
        budget_s = self.config.end_flush_timeout_ms / 1000.0
        self.shipper.flush(deadline_monotonic=started + budget_s)
        spent_ms = (time.monotonic() - started) * 1000.0
        self.post_runtime_ms_total += spent_ms
        self.post_runtime_ms_max = max(self.post_runtime_ms_max, spent_ms)

    def _finish_invocation(self) -> None:
        if self.sampler is not None:
            self.sampler.finish()

    def on_shutdown(self, deadline_ms: int, reason: str) -> None:
        log.debug("SHUTDOWN (%s), %d ms left" % (reason, deadline_ms - now_ms()))
        self._wait_background(max(0.0, (deadline_ms - SHUTDOWN_MARGIN_MS - now_ms()) / 1000.0))
        self._finish_invocation()
        if self.shipper is not None:
            # The final flush sends within the deadline and writes one summary line (what was
            # sent, spooled, dropped); it ends before this deadline whatever the collector does.
            done = self.shipper.shutdown(deadline_ms - SHUTDOWN_MARGIN_MS, reason=reason)
            if not done and not self.shipper.wait_stopped(deadline_ms - SHUTDOWN_EXIT_MS):
                log.warning(
                    "SHUTDOWN: the final flush to %s did not end before the deadline; what it "
                    "had not spooled yet is lost" % self.shipper.url
                )
        if self.sampler is not None:
            self.sampler.stop()
        if self.listener is not None:
            self.listener.close()
        if self.otlp_server is not None:
            self.otlp_server.close()

    def run(self) -> int:
        steps = [time.perf_counter()]
        try:
            register_body = self.register()
        except LambdaApiError as exc:
            log.error("cannot register the extension: %s" % exc)
            return 1
        steps.append(time.perf_counter())
        port = self.start_listener()
        otlp_port = self.start_otlp_receiver()
        steps.append(time.perf_counter())
        if port is not None:
            self.subscribed = self.subscribe(port)
        steps.append(time.perf_counter())
        # The sender and sampler (and their imports) start on a thread while the main thread
        # already waits in `next`: init ends sooner. INVOKE and SHUTDOWN wait for them.
        self._late_setup = threading.Thread(
            target=self._start_background, args=(register_body,), name="lambdascope-setup"
        )
        self._late_setup.daemon = True
        self._late_setup.start()
        self.ready_ms = round((steps[-1] - _IMPORTED_AT) * 1000.0, 3)
        self.ready_epoch = time.time()
        if log.enabled(log.DEBUG):
            marks = [_IMPORTED_AT] + steps
            spent = ["%.1f" % ((marks[i + 1] - marks[i]) * 1000) for i in range(len(steps))]
            log.debug(
                "ready %.1f ms after import (ms: imports %s, register %s, listener %s, "
                "subscribe %s); telemetry port %s, OTLP port %s"
                % (self.ready_ms, spent[0], spent[1], spent[2], spent[3], port, otlp_port)
            )
        return self.loop()

    def _start_background(self, register_body: Mapping[str, Any]) -> None:
        try:
            self.start_shipper(register_body)
            self.start_sampler()
        except Exception as exc:  # noqa: BLE001 - the function must keep working without us
            log.error("cannot start the sender: %r; telemetry will not be sent" % (exc,))

    def _wait_background(self, timeout_s: float = 2.0) -> None:
        if self._late_setup is not None:
            self._late_setup.join(timeout=min(2.0, timeout_s))
            self._late_setup = None

    def loop(self) -> int:
        assert self.api is not None
        failures = 0
        for _ in range(10**12):  # one turn per event; ends at SHUTDOWN
            try:
                try:
                    event = self.api.next_event()
                except LambdaApiError as exc:
                    failures += 1
                    if failures >= NEXT_RETRIES:
                        log.error(
                            "giving up after %d failed event/next calls: %s" % (failures, exc)
                        )
                        self.on_shutdown(now_ms() + 500, "api-gone")
                        return 1
                    log.warning("event/next failed (retrying): %s" % exc)
                    time.sleep(0.05 * failures)
                    continue
                failures = 0
                event_type = str(event.get("eventType", "")).upper()
                if event_type == "INVOKE":
                    self.on_invoke(event)
                elif event_type == "SHUTDOWN":
                    deadline = event.get("deadlineMs")
                    deadline_ms = (
                        int(deadline) if isinstance(deadline, (int, float)) else now_ms() + 2000
                    )
                    self.on_shutdown(deadline_ms, str(event.get("shutdownReason", "")))
                    return 0
                else:
                    log.debug("ignoring event type %r" % event_type)
            except _Terminated:
                self.on_shutdown(now_ms() + 1000, "sigterm")
                return 0
        return 0


def process_startup_ms(environ: Mapping[str, str], ready_epoch: float | None) -> float | None:
    """Process start to the first `next`, in ms: from the launcher's `$EPOCHREALTIME` (bash 5+,
    /bin/sh of the Amazon Linux 2023 runtimes; microseconds), else from /proc/self/stat's start
    time (clock ticks: 10 ms steps). None when neither is available."""
    if ready_epoch is None:
        return None
    launched = (environ.get("LAMBDASCOPE_LAUNCHED_AT") or "").strip().replace(",", ".")
    try:
        if launched:
            return round((ready_epoch - float(launched)) * 1000.0, 3)
    except ValueError:
        pass
    try:
        with open("/proc/self/stat", "rb") as stat_file:
            fields = stat_file.read().rpartition(b")")[2].split()
        started_s = int(fields[19]) / float(os.sysconf("SC_CLK_TCK"))
        age_s = time.clock_gettime(time.CLOCK_BOOTTIME) - started_s
        return round((age_s - (time.time() - ready_epoch)) * 1000.0, 1)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def main(argv: list[str] | None = None) -> int:
    """Run the extension. `argv[0]`, when given, is the name to register (the launcher passes
    its own file name, which Lambda requires)."""
    args = list(sys.argv[1:] if argv is None else argv)
    name = (
        args[0]
        if args and args[0]
        else os.environ.get("LAMBDASCOPE_EXTENSION_NAME") or DEFAULT_NAME
    )
    config, problems = load_config(os.environ)
    log.set_level(log.LEVELS.get(config.log_level, log.WARNING))
    for problem in problems:
        log.warning(problem)
    try:  # noqa: SIM105 - contextlib costs start-up time
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:
        pass  # not the main thread (embedded use)
    try:
        return Agent(name, config, os.environ).run()
    except _Terminated:
        return 0
    except KeyboardInterrupt:
        return 130
