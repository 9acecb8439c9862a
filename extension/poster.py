"""Posting one batch to the collector: a request over httpio, TLS for https URLs, and what the
answer's status means for the batch (taken, retried later, or never accepted)."""

from __future__ import annotations

import threading

from . import log
from .config import CA_BUNDLE, COLLECTOR_URL, parse_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_BACKOFF_S = 60.0
# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, _EMAIL_MISMATCH, _IP_ADDRESS_MISMATCH: the chain is
# trusted but names another host, so a CA bundle is not the fix.
_NAME_MISMATCH_CODES = (62, 63, 64)


class SendResult:
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


class CertificateVerifyError(OSError):
    """The collector's certificate failed verification (chain or host name). An OSError, so
    the sender treats it as it treats a refused connection: kept, retried, spooled."""


class CollectorPoster:
    """The sender's `post`: one request per batch over httpio, TLS for https URLs.

    The SSLContext is built at the first https send (on the sender thread, so neither `ssl` nor
    the CA store is loaded before `next`, and never for an http collector) and reused after:
    loading a CA store costs ~20 ms each time.
    """

    def __init__(self, ca_bundle: str | None = None) -> None:
        self.ca_bundle = ca_bundle  # None: the system's CA store
        self._ssl_context: Any = None
        self._lock = threading.Lock()  # the final flush's parallel sends share the context

    def __call__(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, dict[str, str], bytes]:
        from . import httpio

        tls, host, port, path = parse_url(url)
        context = self.ssl_context() if tls else None
        try:
            response = httpio.request(
                host,
                port,
                "POST",
                path,
                headers,
                body,
                timeout=timeout_s,
                tls=tls,
                ssl_context=context,
            )
        except OSError as exc:
            explained = _explained(exc, self.ca_bundle) if tls else None
            if explained is not None:
                raise explained from exc
            raise
        return response.status, response.headers, response.body

    def ssl_context(self) -> Any:
        if self._ssl_context is not None:
            return self._ssl_context
        with self._lock:
            return self._build_ssl_context()

    def _build_ssl_context(self) -> Any:
        if self._ssl_context is None:
            import ssl

            # create_default_context: CERT_REQUIRED and check_hostname, the system's
            # minimum protocol version; cafile replaces the system store, it does not add to it.
            context = None
            if self.ca_bundle:
                try:
                    context = ssl.create_default_context(cafile=self.ca_bundle)
                except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                    log.error(
                        "%s=%r cannot be loaded as CA certificates (%s); verifying the "
                        "collector against the system's CA store instead"
                        % (CA_BUNDLE, self.ca_bundle, exc)
                    )
                    self.ca_bundle = None
            self._ssl_context = context or ssl.create_default_context()
        return self._ssl_context


def _explained(exc: OSError, ca_bundle: str | None) -> CertificateVerifyError | None:
    """A verification failure, reworded to say what to do; None for other errors."""
    import ssl  # loaded already: only called for https

    if not isinstance(exc, ssl.SSLCertVerificationError):
        return None
    reason = (getattr(exc, "verify_message", None) or str(exc)).rstrip(".")
    if getattr(exc, "verify_code", None) in _NAME_MISMATCH_CODES:
        advice = "the certificate must name the host of %s" % COLLECTOR_URL
    elif ca_bundle:
        advice = "the certificate must chain to a CA in %s=%s" % (CA_BUNDLE, ca_bundle)
    else:
        advice = "set %s to your CA's PEM file" % CA_BUNDLE
    return CertificateVerifyError("certificate verify failed: %s; %s" % (reason, advice))


def http_post(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> tuple[int, dict[str, str], bytes]:
    """One POST with the system's CA store (a new SSLContext per call: use CollectorPoster
    to send more than once over https)."""
    return CollectorPoster()(url, body, headers, timeout_s)


def classify_status(status: int) -> str:
    """2xx taken; 408/425/429/5xx retried; other 4xx (bad batch, token, size) never succeed."""
    if 200 <= status < 300:
        return SendResult.SENT
    if status in (408, 425, 429) or status >= 500:
        return SendResult.RETRY
    return SendResult.REJECTED


def retry_after_s(headers: dict[str, str]) -> float:
    try:
        return max(0.0, min(float(headers.get("retry-after", "0")), MAX_BACKOFF_S))
    except ValueError:
        return 0.0
