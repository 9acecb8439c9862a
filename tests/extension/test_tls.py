"""https to the collector, and no bearer token over plain http to a remote host.

The TLS collector is the FakeCollector with its listening socket wrapped in an SSLContext that
holds a certificate from a trustme CA. Loopback only: the remote addresses below (192.0.2.1 is
TEST-NET-1) are only ever handed to stubs or to a connect guard that refuses them.
"""

from __future__ import annotations

import contextlib
import io
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from lambdascope.extension import config as cfg
from lambdascope.extension.agent import Agent
from lambdascope.extension.buffer import TelemetryBuffer
from lambdascope.extension.config import ca_bundle_problem, is_loopback_host, load_config
from lambdascope.extension.poster import CollectorPoster
from lambdascope.extension.shipper import Shipper
from lambdascope.extension.spool import Spool
from tests.extension.fakes import (
    REGISTER_BODY,
    REPO_ROOT,
    FakeCollector,
    FakeLambdaApi,
    extension_env,
    invocation_events,
    stop_process,
)

TOKEN = "s3cret-token"
REMOTE_HTTP = "http://192.0.2.1:9"  # TEST-NET-1: never contacted, see the connect guards
REFUSAL = (
    "LAMBDASCOPE_COLLECTOR_URL is http:// to a non-loopback host and LAMBDASCOPE_TOKEN is set: "
    "refusing to send the token in clear; use https:// or set LAMBDASCOPE_ALLOW_INSECURE_HTTP=1"
)


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_pem(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "collector-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@contextlib.contextmanager
def tls_collector(ca: trustme.CA, *names: str) -> Iterator[FakeCollector]:
    """The FakeCollector over TLS on 127.0.0.1, with a certificate for `names`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    fake = FakeCollector()
    # The handshake happens at the handler thread's first read, not in accept() on the serving
    # thread; a client that refuses the certificate then ends only its own handler.
    fake.server.socket = context.wrap_socket(
        fake.server.socket, server_side=True, do_handshake_on_connect=False
    )
    fake.server.RequestHandlerClass.timeout = 10  # type: ignore[attr-defined]
    fake.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    fake.url = f"https://127.0.0.1:{fake.port}"
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def make_shipper(environ: dict[str, str], spool: Spool | None = None) -> Shipper:
    """A Shipper with its real `post` (CollectorPoster), as the agent builds it."""
    environ = {"LAMBDASCOPE_SEND_TIMEOUT_MS": "3000", **environ}
    config, problems = load_config(environ)
    assert problems == []
    return Shipper(
        config,
        TelemetryBuffer(),
        {"environment_id": "e" * 32},
        {"name": "lambdascope", "version": "0.1.0"},
        stats=lambda: {"dropped_events": 0},
        spool=spool,
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


class FakeSocket:
    """What socket.create_connection returns in the stubbed tests: records the bytes sent and
    answers 200, so the real client code runs without a packet on any network."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sent = b""

    def settimeout(self, timeout: float | None) -> None:
        pass

    def setsockopt(self, *args: Any) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    def close(self) -> None:
        pass


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[FakeSocket]:
    """Replace socket.create_connection (what httpio uses) with a recording stub."""
    made: list[FakeSocket] = []

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> FakeSocket:
        made.append(FakeSocket(address))
        return made[-1]

    monkeypatch.setattr("socket.create_connection", create_connection)
    return made


# -- https delivery --------------------------------------------------------------------------


def test_a_batch_arrives_over_https_with_the_token_when_the_ca_bundle_is_trusted(
    ca: trustme.CA, ca_pem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    contexts: list[ssl.SSLContext] = []
    real_create = ssl.create_default_context

    def counting_create(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        contexts.append(real_create(*args, **kwargs))
        return contexts[-1]

    with tls_collector(ca, "127.0.0.1", "localhost") as collector:
        monkeypatch.setattr(ssl, "create_default_context", counting_create)
        shipper = make_shipper(
            {
                "LAMBDASCOPE_COLLECTOR_URL": collector.url + "/base",
                "LAMBDASCOPE_TOKEN": TOKEN,
                "LAMBDASCOPE_CA_BUNDLE": ca_pem,
            }
        )
        for request_id in ("a", "b"):
            shipper.buffer.append_events(invocation_events(request_id))
            assert shipper.flush() is True
        assert shipper.batches_sent == 2 and shipper.pending_batches == 0
        requests = list(collector.requests)
    for (headers, batch), request_id in zip(requests, ("a", "b"), strict=True):
        assert headers["Authorization"] == "Bearer " + TOKEN
        assert batch["telemetry"] == invocation_events(request_id)
    assert len(contexts) == 1, "the SSLContext is built once and reused"
    assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname


def test_the_extension_process_ships_over_https_and_loads_ssl_only_then(
    ca: trustme.CA, ca_pem: str, lambda_api: FakeLambdaApi
) -> None:
    with tls_collector(ca, "127.0.0.1") as collector:
        env = extension_env(
            lambda_api,
            LAMBDASCOPE_COLLECTOR_URL=collector.url,
            LAMBDASCOPE_TOKEN=TOKEN,
            LAMBDASCOPE_CA_BUNDLE=ca_pem,
        )
        stderr = _run_guarded_extension(lambda_api, env)
        assert collector.stored_telemetry() == invocation_events("req-1")
        assert {h["Authorization"] for h, _b in collector.requests} == {"Bearer " + TOKEN}
    assert "ssl loaded: True" in stderr
    assert "cannot send" not in stderr and "NON-LOOPBACK" not in stderr


# -- certificates that fail verification -------------------------------------------------------


def test_an_untrusted_certificate_is_a_send_failure_kept_retried_and_spooled(
    ca: trustme.CA, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = Spool(str(tmp_path / "spool"), max_bytes=10**6)
    with tls_collector(ca, "127.0.0.1") as collector:
        # No LAMBDASCOPE_CA_BUNDLE: the system store does not know the trustme CA.
        shipper = make_shipper(
            {"LAMBDASCOPE_COLLECTOR_URL": collector.url, "LAMBDASCOPE_TOKEN": TOKEN}, spool
        )
        shipper.buffer.append_events(invocation_events("a"))
        assert shipper.flush() is False
        assert shipper.pending_batches == 1 and shipper.dropped_events == 0
        assert shipper.flush(force=True) is False  # retried: same failure
        shipper.start()
        assert shipper.shutdown(deadline_ms=_now_ms() + 2000) is True
        assert collector.requests == [], "no request may follow a refused certificate"
    assert len(spool) == 1  # the final flush spooled it, as for a refused connection
    failures = [line for line in capsys.readouterr().err.splitlines() if "cannot send" in line]
    assert len(failures) == 1, failures  # one line per failure streak
    line = failures[0]
    assert collector.url + "/v1/extension/batches" in line
    assert "certificate verify failed: " in line
    assert "set LAMBDASCOPE_CA_BUNDLE to your CA's PEM file" in line
    assert "SSLCertVerificationError" not in line


def test_a_certificate_for_another_host_is_refused_even_from_a_trusted_ca(
    ca: trustme.CA, ca_pem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with tls_collector(ca, "collector.example") as collector:
        shipper = make_shipper(
            {
                "LAMBDASCOPE_COLLECTOR_URL": collector.url,
                "LAMBDASCOPE_TOKEN": TOKEN,
                "LAMBDASCOPE_CA_BUNDLE": ca_pem,
            }
        )
        shipper.buffer.append_events(invocation_events("a"))
        assert shipper.flush() is False
        assert shipper.pending_batches == 1
        assert collector.requests == []
    err = capsys.readouterr().err
    assert "cannot send to collector " + collector.url in err
    assert "certificate verify failed: " in err and "mismatch" in err
    assert "must name the host of LAMBDASCOPE_COLLECTOR_URL" in err


# -- LAMBDASCOPE_CA_BUNDLE that cannot be used -----------------------------------------------


def test_a_bad_ca_bundle_is_a_clear_config_message(tmp_path: Path, ca_pem: str) -> None:
    assert ca_bundle_problem(ca_pem) is None
    missing = str(tmp_path / "missing.pem")
    problem = ca_bundle_problem(missing)
    assert problem is not None
    assert (
        f"LAMBDASCOPE_CA_BUNDLE={missing!r} cannot be read (No such file or directory)" in problem
    )
    assert "system's CA store" in problem
    assert "cannot be read" in (ca_bundle_problem(str(tmp_path)) or "")  # a directory
    not_pem = tmp_path / "key.txt"
    not_pem.write_text("not a certificate\n")
    assert "holds no PEM certificate" in (ca_bundle_problem(str(not_pem)) or "")
    if os.geteuid() != 0:  # root reads any file
        unreadable = tmp_path / "unreadable.pem"
        unreadable.write_bytes(Path(ca_pem).read_bytes())
        unreadable.chmod(0)
        assert "cannot be read (Permission denied)" in (ca_bundle_problem(str(unreadable)) or "")


def test_the_agent_reports_a_missing_ca_bundle_at_start_and_uses_the_system_store(
    ca: trustme.CA, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.pem")
    with tls_collector(ca, "127.0.0.1") as collector:
        environ = {
            "LAMBDASCOPE_COLLECTOR_URL": collector.url,
            "LAMBDASCOPE_TOKEN": TOKEN,
            "LAMBDASCOPE_CA_BUNDLE": missing,
            "LAMBDASCOPE_SPOOL_MAX_BYTES": "0",
            "LAMBDASCOPE_PROC_SAMPLE_INTERVAL_MS": "0",
        }
        config, problems = load_config(environ)
        assert problems == []  # load_config stays pure: the file is checked by the agent
        agent = Agent("lambdascope", config, environ)
        agent.start_shipper(REGISTER_BODY)
        assert agent.shipper is not None
        try:
            err = capsys.readouterr().err
            assert err.count(f"LAMBDASCOPE_CA_BUNDLE={missing!r} cannot be read") == 1
            agent.buffer.append_events(invocation_events("a"))
            assert agent.shipper.flush() is False  # the system store does not trust trustme
        finally:
            agent.shipper.shutdown(deadline_ms=_now_ms() + 1000)
        assert collector.requests == []
    assert "set LAMBDASCOPE_CA_BUNDLE to your CA's PEM file" in capsys.readouterr().err


def test_a_ca_bundle_openssl_cannot_load_falls_back_to_the_system_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    poster = CollectorPoster(str(garbled))
    context = poster.ssl_context()
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert poster.ssl_context() is context
    assert "cannot be loaded as CA certificates" in capsys.readouterr().err


# -- no token over plain http to a remote host ---------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        REMOTE_HTTP,
        "http://collector.example:4320/base",
        "HTTP://10.1.2.3",
        "http://[2001:db8::1]:4320",
        "http://127.0.0.1.nip.io:4320",  # a name, even one that looks like loopback
        "http://localhost.example",
        "http://128.0.0.1",
    ],
)
def test_a_token_over_http_to_a_remote_host_is_refused_as_a_config_error(url: str) -> None:
    config, problems = load_config({"LAMBDASCOPE_COLLECTOR_URL": url, "LAMBDASCOPE_TOKEN": TOKEN})
    assert config.collector_url is None  # runs as if unset: nothing is sent
    assert len(problems) == 1 and problems[0].startswith(REFUSAL)
    assert TOKEN not in problems[0]


@pytest.mark.parametrize(
    "environ",
    [
        # loopback never leaves the sandbox
        {"LAMBDASCOPE_COLLECTOR_URL": "http://127.0.0.1:4320", "LAMBDASCOPE_TOKEN": TOKEN},
        {"LAMBDASCOPE_COLLECTOR_URL": "http://127.8.9.10:4320", "LAMBDASCOPE_TOKEN": TOKEN},
        {"LAMBDASCOPE_COLLECTOR_URL": "http://localhost:4320/x", "LAMBDASCOPE_TOKEN": TOKEN},
        {"LAMBDASCOPE_COLLECTOR_URL": "http://LocalHost.", "LAMBDASCOPE_TOKEN": TOKEN},
        {"LAMBDASCOPE_COLLECTOR_URL": "http://[::1]:4320", "LAMBDASCOPE_TOKEN": TOKEN},
        {"LAMBDASCOPE_COLLECTOR_URL": "http://[0:0:0:0:0:0:0:1]", "LAMBDASCOPE_TOKEN": TOKEN},
        # no token: nothing secret goes in clear
        {"LAMBDASCOPE_COLLECTOR_URL": REMOTE_HTTP},
        # encrypted
        {"LAMBDASCOPE_COLLECTOR_URL": "https://192.0.2.1:9", "LAMBDASCOPE_TOKEN": TOKEN},
        # the explicit opt-in
        {
            "LAMBDASCOPE_COLLECTOR_URL": REMOTE_HTTP,
            "LAMBDASCOPE_TOKEN": TOKEN,
            "LAMBDASCOPE_ALLOW_INSECURE_HTTP": "1",
        },
    ],
)
def test_loopback_https_tokenless_or_opted_in_urls_are_kept(environ: dict[str, str]) -> None:
    config, problems = load_config(environ)
    assert problems == []
    assert config.collector_url == environ["LAMBDASCOPE_COLLECTOR_URL"].rstrip("/")


def test_the_opt_in_flag_reads_1_and_0_and_reports_anything_else() -> None:
    base = {"LAMBDASCOPE_COLLECTOR_URL": REMOTE_HTTP, "LAMBDASCOPE_TOKEN": TOKEN}
    config, problems = load_config({**base, cfg.ALLOW_INSECURE_HTTP: "0"})
    assert config.collector_url is None and len(problems) == 1
    config, problems = load_config({**base, cfg.ALLOW_INSECURE_HTTP: "please"})
    assert config.collector_url is None
    assert len(problems) == 2 and "LAMBDASCOPE_ALLOW_INSECURE_HTTP='please'" in problems[0]
    assert cfg.ALLOW_INSECURE_HTTP == "LAMBDASCOPE_ALLOW_INSECURE_HTTP"
    assert cfg.CA_BUNDLE == "LAMBDASCOPE_CA_BUNDLE"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("localhost", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("126.0.0.1", False),
        ("127.0.0.256", False),
        ("0177.0.0.1", False),  # octal spelling: counted remote, the safe side
        ("::2", False),
        ("sandbox.localdomain", False),
        ("", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_a_refused_url_makes_no_shipper_and_no_connection(
    connections: list[FakeSocket], capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {"LAMBDASCOPE_COLLECTOR_URL": REMOTE_HTTP, "LAMBDASCOPE_TOKEN": TOKEN}
    config, _problems = load_config(environ)
    agent = Agent("lambdascope", config, environ)
    agent.start_shipper(REGISTER_BODY)
    assert agent.shipper is None
    assert connections == []
    # load_config's line says why; the "is not set" warning would contradict it
    assert "is not set" not in capsys.readouterr().err


def test_with_the_opt_in_the_token_goes_over_http_to_the_remote_host(
    connections: list[FakeSocket],
) -> None:
    shipper = make_shipper(
        {
            "LAMBDASCOPE_COLLECTOR_URL": REMOTE_HTTP + "/base",
            "LAMBDASCOPE_TOKEN": TOKEN,
            "LAMBDASCOPE_ALLOW_INSECURE_HTTP": "1",
        }
    )
    shipper.buffer.append_events(invocation_events("a"))
    assert shipper.flush() is True  # answered by the stub socket
    (connection,) = connections
    assert connection.address == ("192.0.2.1", 9)
    assert connection.sent.startswith(b"POST /base/v1/extension/batches HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n" in connection.sent


def test_a_token_over_loopback_http_is_still_delivered(collector: FakeCollector) -> None:
    shipper = make_shipper({"LAMBDASCOPE_COLLECTOR_URL": collector.url, "LAMBDASCOPE_TOKEN": TOKEN})
    shipper.buffer.append_events(invocation_events("a"))
    assert shipper.flush() is True
    assert [h["Authorization"] for h, _b in collector.requests] == ["Bearer " + TOKEN]


# -- the extension process: refusal, and no ssl for http ---------------------------------------

_GUARDED_MAIN = """
import socket, sys
sys.path.insert(0, {root!r})
real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

def loopback(address):
    host = address[0] if isinstance(address, tuple) else ""
    return host.startswith("127.") or host in ("::1", "localhost")

def connect(self, address):
    if not loopback(address):
        sys.stderr.write("NON-LOOPBACK CONNECT %r\\n" % (address,))
        raise OSError("blocked by the test: %r" % (address,))
    return real_connect(self, address)

def connect_ex(self, address):
    if not loopback(address):
        sys.stderr.write("NON-LOOPBACK CONNECT %r\\n" % (address,))
        return 111
    return real_connect_ex(self, address)

socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
from lambdascope.extension.agent import main
code = main(["lambdascope"])
sys.stderr.write("ssl loaded: %s\\n" % ("ssl" in sys.modules))
sys.exit(code)
"""


def _run_guarded_extension(api: FakeLambdaApi, env: dict[str, str]) -> str:
    """Run the extension (one invocation, then SHUTDOWN) with a connect guard that refuses and
    reports any address outside 127.0.0.0/8 and ::1; returns its stderr."""
    process = subprocess.Popen(
        [sys.executable, "-c", _GUARDED_MAIN.format(root=str(REPO_ROOT))],
        cwd=str(REPO_ROOT),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert api.wait_next_calls(1), "the extension never called event/next"
        api.invoke("req-1")
        assert api.post_telemetry(invocation_events("req-1")) == 200
        assert api.wait_next_calls(2)
        api.shutdown_event(budget_ms=2000)
        assert process.wait(timeout=10) == 0, "the function's init and run must not break"
    finally:
        _stdout, stderr = stop_process(process)
    return stderr


def test_the_extension_refuses_a_token_over_http_to_a_remote_host_without_connecting(
    lambda_api: FakeLambdaApi,
) -> None:
    env = extension_env(lambda_api, LAMBDASCOPE_COLLECTOR_URL=REMOTE_HTTP, LAMBDASCOPE_TOKEN=TOKEN)
    stderr = _run_guarded_extension(lambda_api, env)
    assert stderr.count(REFUSAL) == 1, stderr
    assert "NON-LOOPBACK CONNECT" not in stderr
    assert "cannot send" not in stderr and "is not set" not in stderr
    assert TOKEN not in stderr


def test_an_http_extension_never_imports_ssl(
    lambda_api: FakeLambdaApi, collector: FakeCollector
) -> None:
    env = extension_env(
        lambda_api, LAMBDASCOPE_COLLECTOR_URL=collector.url, LAMBDASCOPE_TOKEN=TOKEN
    )
    stderr = _run_guarded_extension(lambda_api, env)
    assert collector.stored_telemetry() == invocation_events("req-1")  # it did send
    assert "ssl loaded: False" in stderr, stderr


def test_importing_the_sender_for_an_http_url_does_not_import_ssl() -> None:
    script = (
        f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from extension.config import load_config\n"
        "from extension.poster import CollectorPoster\n"
        "from extension.shipper import Shipper\n"
        "config, _ = load_config({'LAMBDASCOPE_COLLECTOR_URL': 'http://127.0.0.1:9',"
        " 'LAMBDASCOPE_TOKEN': 't'})\n"
        "CollectorPoster(config.ca_bundle)\n"
        "print('ssl' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.strip() == "False"
