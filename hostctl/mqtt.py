"""The host's MQTT session.

paho's network thread does no work: its callbacks only put ``(topic, payload)``
on a bounded queue that the command's own thread drains (:meth:`HostSession.get`).
The persistent session (``clean_session=False``, a client id derived from the
results store path) makes the broker queue results while hostctl is away, so
a result is never lost because the host was not listening.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from hostctl.errors import HostctlError
from protocol.broker import DEFAULT_PORTS, BrokerAddress, BrokerSettings, broker_settings
from protocol.broker import parse_broker_url as _parse_broker_url
from protocol.errors import ProtocolError

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_PORTS", "BrokerAddress", "HostSession", "parse_broker_url"]


class ConnectionOptions(Protocol):
    """What a session needs from the global options (hostctl.cli.GlobalOptions fits)."""

    @property
    def broker(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def ca_cert(self) -> str | None: ...
    @property
    def client_cert(self) -> str | None: ...
    @property
    def client_key(self) -> str | None: ...
    @property
    def insecure(self) -> bool: ...


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://[user[:pass]@]host[:port]`` or ``mqtts://...`` (protocol.broker,
    shared with the agent). Raises HostctlError with the form expected."""
    try:
        return _parse_broker_url(url)
    except ProtocolError as exc:
        raise HostctlError(str(exc)) from None


def connection_settings(options: ConnectionOptions) -> BrokerSettings:
    """The broker address and TLS settings of the global options, validated as
    the agent validates its own (protocol.broker). Raises HostctlError."""
    try:
        return broker_settings(
            options.broker,
            ca_cert=options.ca_cert,
            client_cert=options.client_cert,
            client_key=options.client_key,
            insecure=options.insecure,
        )
    except ProtocolError as exc:
        raise HostctlError(str(exc)) from None


def host_client_id(db_path: str | Path) -> str:
    """The persistent-session client id of hostctl using the store at `db_path`.

    One store = one session: results queued for it by the broker end up in that store.
    """
    digest = hashlib.sha256(str(Path(db_path).expanduser().resolve()).encode()).hexdigest()
    return f"hostctl-{digest[:12]}"


class SessionLock:
    """An advisory lock on the persistent session of one results store.

    Two hostctl processes with the same client id would make the broker
    disconnect each other in turn; the second one uses a clean session instead.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(str(Path(db_path).expanduser().resolve()) + ".session.lock")
        self._handle: Any = None

    def acquire(self) -> bool:
        """True when this process now holds the lock (False: another hostctl does)."""
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a")
        except OSError as exc:
            logger.warning(
                "cannot create %s (%s): using the persistent session anyway", self.path, exc
            )
            return True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock
            self._handle = None


def ephemeral_client_id() -> str:
    """A client id for a clean, throw-away session (e.g. `hostctl devices`)."""
    return f"hostctl-tmp-{uuid.uuid4().hex[:12]}"


Message = tuple[str, bytes]


class HostSession:
    """A connected paho client whose received messages wait in :meth:`get`."""

    def __init__(
        self,
        options: ConnectionOptions,
        *,
        client_id: str,
        subscriptions: Sequence[tuple[str, int]],
        persistent: bool,
        queue_size: int = 10_000,
    ) -> None:
        self.broker = connection_settings(options)
        self.address = self.broker.address
        self.client_id = client_id
        self._subscriptions = list(subscriptions)
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=queue_size)
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._connect_error: str | None = None
        self._pending_subs: set[int] = set()
        self._lock = threading.Lock()
        self._client = self._make_client(options, persistent)
        self.lock: SessionLock | None = None
        """Held while this session uses the store's persistent client id."""

    def _make_client(self, options: ConnectionOptions, persistent: bool) -> Any:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
        )
        username = options.username or self.address.username
        password = options.password or self.address.password
        if username:
            client.username_pw_set(username, password)
        if self.broker.tls is not None:
            try:
                client.tls_set_context(self.broker.tls.context())
            except ProtocolError as exc:
                raise HostctlError(str(exc)) from None
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # -- paho callbacks (network thread: hand off only) ---------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._connect_error = str(reason)
            logger.warning("broker refused the connection: %s", reason)
            self._connected.set()
            return
        self._connect_error = None
        logger.debug("connected to %s as %s", self.address, self.client_id)
        # Subscriptions are (re)made on every connect: retained state is re-sent too.
        if self._subscriptions:
            _result, mid = client.subscribe(self._subscriptions)
            with self._lock:
                self._pending_subs.add(mid)
        else:
            self._subscribed.set()
        self._connected.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        with self._lock:
            self._pending_subs.discard(mid)
            if not self._pending_subs:
                self._subscribed.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connected.clear()
        self._subscribed.clear()
        logger.debug("disconnected from %s: %s", self.address, reason)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        # Blocking (not dropping) when full: paho acks a QoS 1 message after this
        # returns, so dropping here would lose a result for good.
        self._queue.put((str(message.topic), bytes(message.payload)))

    # -- API -----------------------------------------------------------------------
    def connect(self, timeout: float = 10.0) -> None:
        """Connect and wait until subscribed; HostctlError when the broker is unreachable."""
        from protocol.broker import describe_socket_error, diagnose

        try:
            # A synchronous first connect: an unreachable broker fails now, not after
            # the timeout; later reconnects are paho's (loop_start, with backoff).
            self._client.connect(self.address.host, self.address.port, keepalive=30)
        except (OSError, ValueError) as exc:  # ssl errors are OSErrors: named here
            import ssl

            hint = "" if isinstance(exc, ssl.SSLError) else " (check --broker, or EDGEPROF_BROKER)"
            raise HostctlError(
                f"cannot connect to the broker: {describe_socket_error(exc, self.address)}{hint}"
            ) from None
        self._client.loop_start()
        deadline = time.monotonic() + timeout
        if not self._subscribed.wait(timeout) or self._connect_error:
            reason = self._connect_error
            self.close()
            if reason is None:
                # The socket opened, but no CONNACK came: with TLS 1.3 a missing or
                # refused client certificate shows only now; find out which.
                reason = diagnose(self.broker) or (
                    f"{self.address} did not answer CONNECT within {timeout:.0f} s"
                )
            else:
                reason = f"the broker at {self.address} refused the connection: {reason}"
                if "authori" in reason.lower() or "password" in reason.lower():
                    reason += " (check --username and --password / EDGEPROF_PASSWORD)"
            raise HostctlError(f"cannot connect to the broker: {reason}")
        logger.debug("subscribed after %.2f s", timeout - (deadline - time.monotonic()))

    def subscribe(self, topic: str, qos: int = 1) -> None:
        """Add a subscription now and on every reconnect."""
        self._subscriptions.append((topic, qos))
        self._client.subscribe(topic, qos)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Any:
        """Queue a publish (paho sends it, and re-sends QoS 1 after a reconnect)."""
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def get(self, timeout: float) -> Message | None:
        """The next received message, or None after `timeout` seconds."""
        try:
            return self._queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def wait_published(self, timeout: float = 10.0) -> None:
        """Wait until every queued publish has left (best effort; logged if not)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self._client.want_write() and self._outgoing_empty():
                return
            time.sleep(0.02)
        logger.warning("some messages were not yet sent when hostctl stopped waiting")

    def _outgoing_empty(self) -> bool:
        out = getattr(self._client, "_out_messages", None)
        return not out

    def close(self) -> None:
        """Disconnect cleanly (the persistent session stays on the broker)."""
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            # paho closes its wake-up socket pair only when the client is garbage
            # collected; close it now so no socket outlives the session.
            reset = getattr(self._client, "_reset_sockets", None)
            if reset is not None:
                reset()
            if self.lock is not None:
                self.lock.release()

    def __enter__(self) -> HostSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
