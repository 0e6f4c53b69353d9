"""Where the broker is and how to reach it: one validated reading of the broker
URL and the TLS settings, shared by the agent and hostctl, and one wording of
why a connection failed (unknown CA, host name mismatch, missing client
certificate, nothing listening) for both.

Standard library only; ``ssl`` and ``socket`` are imported when used, so
``hostctl --help`` does not pay for them. No MQTT here: callers hand the
context of :meth:`TlsSettings.context` to their client (paho's
``tls_set_context``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from protocol.errors import ProtocolError, shown

if TYPE_CHECKING:
    import ssl

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
URL_FORM = "mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"


@dataclass(frozen=True)
class BrokerAddress:
    """A parsed broker URL."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    """User name given in the URL (``mqtt://user:pass@host``), if any."""
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.host:
            raise ProtocolError(f"broker URL has no host: use {URL_FORM}")
        if any(c.isspace() or c in "/?#@" for c in self.host):
            raise ProtocolError(f"broker host {shown(self.host)} is not a host name")
        if not 0 < self.port < 65536:
            raise ProtocolError(f"broker port {self.port} is out of range (1-65535)")

    @property
    def scheme(self) -> str:
        return "mqtts" if self.tls else "mqtt"

    def __str__(self) -> str:
        """The URL without credentials (fit for logs and error messages)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://[user[:pass]@]host[:port]`` or ``mqtts://...``; a bare
    ``host[:port]`` means ``mqtt://``. Raises ProtocolError saying the form expected."""
    text = str(url).strip()
    if "://" not in text:
        text = "mqtt://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ProtocolError(
            f"broker URL {shown(url)}: the port is not a number in 1-65535"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ProtocolError(
            f"broker URL {shown(url)}: the scheme must be mqtt:// or mqtts://, as in {URL_FORM}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ProtocolError(f"broker URL {shown(url)}: expected {URL_FORM} with no path")
    return BrokerAddress(
        host=parts.hostname or "",
        port=port if port is not None else DEFAULT_PORTS[scheme],
        tls=scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _readable_file(option: str, path: str | None) -> None:
    if path is None:
        return
    file = Path(path)
    if not file.is_file():
        raise ProtocolError(f"{option} {path}: no such file")
    if not os.access(file, os.R_OK):
        raise ProtocolError(f"{option} {path}: not readable by this user")


@dataclass(frozen=True)
class TlsSettings:
    """How to verify the broker (and prove who we are) over ``mqtts://``."""

    ca_cert: str | None = None
    """CA bundle (PEM) that signs the broker's certificate; None: the system's CAs."""
    client_cert: str | None = None
    """Client certificate (PEM), for brokers that require one (needs `client_key`)."""
    client_key: str | None = None
    """The client certificate's private key (PEM)."""
    insecure: bool = False
    """Do not verify the broker's certificate or host name (testing only)."""

    def __post_init__(self) -> None:
        if bool(self.client_cert) != bool(self.client_key):
            raise ProtocolError("--client-cert and --client-key go together: give both or neither")
        _readable_file("--ca-cert", self.ca_cert)
        _readable_file("--client-cert", self.client_cert)
        _readable_file("--client-key", self.client_key)

    @property
    def given(self) -> bool:
        """True when any TLS option was set."""
        return bool(self.ca_cert or self.client_cert or self.insecure)

    def context(self) -> ssl.SSLContext:
        """An SSLContext that verifies the broker as these settings say."""
        import ssl

        try:
            context = ssl.create_default_context(cafile=self.ca_cert)
        except (ssl.SSLError, OSError) as exc:
            raise ProtocolError(
                f"--ca-cert {self.ca_cert}: not a PEM CA bundle ({_reason(exc)})"
            ) from None
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert:
            try:
                context.load_cert_chain(self.client_cert, self.client_key)
            except (ssl.SSLError, OSError) as exc:
                raise ProtocolError(
                    f"--client-cert {self.client_cert} / --client-key {self.client_key}: "
                    f"cannot use them ({_reason(exc)}; is the key the certificate's, unencrypted?)"
                ) from None
        return context


@dataclass(frozen=True)
class BrokerSettings:
    """A broker address with the TLS settings that go with it (None: plain MQTT)."""

    address: BrokerAddress
    tls: TlsSettings | None


def broker_settings(
    url: str,
    *,
    ca_cert: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    insecure: bool = False,
) -> BrokerSettings:
    """Validate a broker URL and TLS options together: TLS options need ``mqtts://``."""
    address = parse_broker_url(url)
    tls = TlsSettings(ca_cert, client_cert, client_key, insecure)
    if not address.tls:
        if tls.given:
            option = "--insecure" if insecure and not (ca_cert or client_cert) else "TLS files"
            raise ProtocolError(
                f"{option} given but broker {address} is not mqtts://: use mqtts://{address.host}"
            )
        return BrokerSettings(address, None)
    return BrokerSettings(address, tls)


# -- why a connection failed -----------------------------------------------------
_UNTRUSTED_CODES = {2, 18, 19, 20, 21}
"""OpenSSL verify codes: issuer unknown, self-signed (leaf or in chain), unable
to get the local issuer, unable to verify the leaf."""
_HOSTNAME_CODES = {62, 64}  # host name / IP address mismatch


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = reason if isinstance(reason, str) and reason else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def describe_tls_error(exc: BaseException, address: BrokerAddress) -> str | None:
    """One line naming a TLS failure (what is wrong and what to do), or None when
    `exc` is not one."""
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in _UNTRUSTED_CODES:
            return (
                f"the broker's certificate at {address} is signed by a CA this machine does "
                "not trust: give that CA with --ca-cert (or --insecure, for testing only)"
            )
        if code in _HOSTNAME_CODES:
            return (
                f"the broker's certificate is not issued for {address.host}: connect with a "
                "host name the certificate names, or re-issue it (--insecure skips the check, "
                "for testing only)"
            )
        if code == 10:
            return f"the broker's certificate at {address} has expired: renew it"
        if code == 9:
            return (
                f"the broker's certificate at {address} is not valid yet: check this "
                "machine's clock"
            )
        return f"the broker's certificate at {address} was refused: {exc.verify_message}"
    if not isinstance(exc, ssl.SSLError):
        return None
    reason = _reason(exc).upper()
    if "CERTIFICATE_REQUIRED" in reason or "PEER_DID_NOT_RETURN_A_CERTIFICATE" in reason:
        return (
            f"the broker at {address} requires a client certificate: give --client-cert "
            "and --client-key"
        )
    if "UNKNOWN_CA" in reason:
        return (
            f"the broker at {address} does not trust this client's certificate (not signed "
            "by a CA it knows): use a certificate from the broker's CA"
        )
    if "CERTIFICATE_EXPIRED" in reason:
        return f"the broker at {address} refused this client's certificate: it has expired"
    if "BAD_CERTIFICATE" in reason or "CERTIFICATE_UNKNOWN" in reason:
        return f"the broker at {address} refused this client's certificate"
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER_FAILURE" in reason:
        return f"no TLS at {address}: is this port plain MQTT? (use mqtt:// and its port)"
    return f"TLS with the broker at {address} failed: {_reason(exc)}"


def describe_socket_error(exc: BaseException, address: BrokerAddress) -> str:
    """One line for any failure to open a connection to the broker."""
    import socket

    tls = describe_tls_error(exc, address)
    if tls is not None:
        return tls
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the broker's host name {address.host!r}: check --broker"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens at {address}: is the broker running, and is the port right?"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"no answer from {address}: a firewall, or a wrong address?"
    if isinstance(exc, ConnectionResetError):
        return f"the broker at {address} closed the connection at once"
    return f"cannot reach the broker at {address}: {_reason(exc)}"


def _speaks_tls(address: BrokerAddress, timeout: float) -> str | None:
    """For a plain mqtt:// address: a line saying the port wants TLS, if it does."""
    import socket
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((address.host, address.port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=address.host),
        ):
            pass
    except ssl.SSLError as exc:
        # A server that answered ClientHello with an alert speaks TLS; a plain
        # MQTT broker answers with nothing TLS understands.
        if "ALERT" not in _reason(exc).upper():
            return None
    except OSError:
        return None
    return f"the broker at {address} speaks TLS: use mqtts://{address.host}:{address.port}"


def diagnose(broker: BrokerSettings, timeout: float = 5.0) -> str | None:
    """Open a connection the way an MQTT client would (TCP, then the TLS handshake)
    and say why it fails, in one line; None when both work.

    A broker that requires a client certificate rejects a client without one
    only after the TLS 1.3 handshake, so one byte is read too: a broker waiting
    for MQTT's CONNECT sends nothing, one rejecting the client sends an alert.
    """
    import socket
    import ssl

    address = broker.address
    try:
        raw = socket.create_connection((address.host, address.port), timeout=timeout)
    except OSError as exc:
        return describe_socket_error(exc, address)
    with raw:
        if broker.tls is None:
            return _speaks_tls(address, timeout)
        try:
            context = broker.tls.context()
        except ProtocolError as exc:
            return str(exc)
        try:
            with context.wrap_socket(raw, server_hostname=address.host) as sock:
                sock.settimeout(min(timeout, 1.0))
                try:
                    if sock.recv(1) == b"":
                        return (
                            f"the broker at {address} closed the TLS connection after the "
                            "handshake: does it require a client certificate (--client-cert)?"
                        )
                except TimeoutError:
                    return None  # waiting for CONNECT: TLS is fine
        except (ssl.SSLError, OSError) as exc:
            return describe_socket_error(exc, address)
    return None


__all__ = [
    "DEFAULT_PORTS",
    "BrokerAddress",
    "BrokerSettings",
    "TlsSettings",
    "broker_settings",
    "describe_socket_error",
    "describe_tls_error",
    "diagnose",
    "parse_broker_url",
]
