"""The agent's MQTT session on paho-mqtt 2.x.

paho's network thread does no work here: callbacks only queue incoming messages
and remember that a (re)connect happened. Control messages (the device's own
``dev/{id}/job`` topic: manifests, acks, collect and cancel requests) have their
own queue, served first, so a chunk flood cannot drown a job; chunks go to an
inbox that drops when full (a lost chunk is requested again). Both queues are
bounded by bytes, and a message's size is checked before it is queued: a flood
of big payloads costs dropped messages, never the device's memory. Other
agents' chunk requests, which share the ``blob/{sha}/+`` filter with the chunks,
are discarded here. Subscriptions are (re)made in the connect callback, every
time; the Last Will marks the device offline. Reconnects use paho's backoff
(1 s doubling to 30 s); a failed connection is named (unknown CA, host name
mismatch, missing client certificate, nothing listening) by
:func:`protocol.broker.diagnose`, run on the agent's main thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import AgentSettings
from protocol.broker import diagnose
from protocol.messages import DEFAULT_CHUNK_SIZE
from protocol.payload import MAX_CONTROL_BYTES
from protocol.ratelimit import LogLimiter

log = logging.getLogger(__name__)

INBOX_SIZE = 512
"""Chunks waiting to be written; beyond this they are dropped (and requested again)."""
INBOX_BYTES = 512 * DEFAULT_CHUNK_SIZE
"""Bytes of chunks waiting (32 MiB): bigger chunks fill the inbox sooner."""
MAX_CHUNK_BYTES = 1024 * 1024
"""No blob's chunks are bigger (protocol.messages.BlobRef); a bigger payload on a
chunk topic is dropped before it is queued."""
CONTROL_QUEUE_BYTES = 16 * 1024 * 1024
"""Bytes of control messages waiting; a host sends a few KB per job."""


class BoundedQueue:
    """A FIFO of messages bounded by count and by bytes (not thread-safe: the
    session guards it with its condition)."""

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._items: deque[Inbound] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def fits(self, size: int) -> bool:
        return len(self._items) < self.max_count and self.bytes + size <= self.max_bytes

    def append(self, item: Inbound) -> None:
        self._items.append(item)
        self.bytes += len(item.payload)

    def popleft(self) -> Inbound:
        item = self._items.popleft()
        self.bytes -= len(item.payload)
        return item


@dataclass(frozen=True)
class Inbound:
    """One message received from the broker."""

    topic: str
    payload: bytes


class MqttSession:
    """Connection, will, subscriptions and publishing for one agent."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        client_id: str,
        will_topic: str,
        will_payload: bytes,
        control_topic: str,
        inbox_size: int = INBOX_SIZE,
        inbox_bytes: int = INBOX_BYTES,
        control_bytes: int = CONTROL_QUEUE_BYTES,
    ) -> None:
        self.settings = settings
        self.control_topic = control_topic
        self._inbox = BoundedQueue(inbox_size, inbox_bytes)
        self._control = BoundedQueue(1_000_000, control_bytes)
        self._arrived = threading.Condition()
        self._control_dropped = 0
        self._oversized = LogLimiter(log, per_minute=6)
        self._subscriptions: set[str] = set()
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._connect_pending = threading.Event()
        self._dropped = 0
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.will_set(will_topic, will_payload, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if settings.username:
            client.username_pw_set(settings.username, settings.password)
        broker = settings.broker_settings
        if broker.tls is not None:
            # One context for every reconnect, verified as protocol.broker says;
            # with --insecure its check_hostname is off, and paho follows it.
            client.tls_set_context(broker.tls.context())
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        self._client = client
        self._failed_attempts = 0
        self._diagnose = threading.Event()
        self._got_connack = False

    # -- paho callbacks (network thread: no work here) ------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self._got_connack = True
        if reason_code.is_failure:
            self._failed_attempts += 1
            if self._failed_attempts == 1 or self._failed_attempts % 10 == 0:
                log.warning(
                    "the broker at %s refused the connection: %s%s",
                    self.settings.address,
                    reason_code,
                    " (check --username and the password)"
                    if "authori" in str(reason_code).lower()
                    or "password" in str(reason_code).lower()
                    else "",
                )
            return
        with self._lock:
            topics = sorted(self._subscriptions)
        for topic in topics:
            client.subscribe(topic, qos=1)
        self._connected.set()
        self._connect_pending.set()
        self._failed_attempts = 0
        log.info("connected to %s", self.settings.address)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected:
            log.warning("disconnected from the broker (%s); reconnecting with backoff", reason_code)
        elif not self._got_connack:
            # The socket (and TLS handshake) worked but the broker hung up before
            # answering CONNECT: with TLS 1.3 that is how a missing client
            # certificate shows. Counted as a failed attempt and named.
            self._on_connect_fail(client, userdata)
        self._got_connack = False

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho does not say why; the main thread finds out (take_diagnosis) the
        # first time, then every 10th try, so a long outage does not flood the
        # journal. paho retries with backoff (1 s doubling to 30 s).
        self._failed_attempts += 1
        if self._failed_attempts == 1 or self._failed_attempts % 10 == 0:
            self._diagnose.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        size = len(message.payload)  # checked before anything is copied or queued
        if topic == self.control_topic:
            if size > MAX_CONTROL_BYTES:
                self._oversized.warning(
                    "oversized", "ignoring a %d-byte control message (limit %d)",
                    size, MAX_CONTROL_BYTES,
                )  # fmt: skip
                return
            with self._arrived:
                if self._control.fits(size):
                    self._control.append(Inbound(topic, bytes(message.payload)))
                    self._arrived.notify()
                    return
            self._control_dropped += 1
            self._oversized.error(
                "control-full",
                "!!! %d MiB of control messages waiting: dropped one (%d so far); the "
                "host re-sends unanswered manifests !!!",
                self._control.max_bytes // 2**20,
                self._control_dropped,
            )
            return
        if topic.endswith("/request"):
            return  # another agent asking the host for chunks: nothing for us
        if size > MAX_CHUNK_BYTES:
            self._oversized.warning(
                "chunk-size", "ignoring a %d-byte payload on %s: no chunk is that big",
                size, topic[:120],
            )  # fmt: skip
            return
        with self._arrived:
            if self._inbox.fits(size):
                self._inbox.append(Inbound(topic, bytes(message.payload)))
                self._arrived.notify()
                return
        self._dropped += 1
        if self._dropped % 100 == 1:
            log.warning("chunk inbox full: dropped %d chunk(s) so far", self._dropped)

    # -- API for the agent's threads -----------------------------------------
    def next_message(self, timeout: float) -> Inbound | None:
        """The next message to handle — control messages before chunks — or None
        after `timeout` seconds without any."""
        with self._arrived:
            if not (self._control or self._inbox):
                self._arrived.wait(timeout)
            if self._control:
                return self._control.popleft()
            if self._inbox:
                return self._inbox.popleft()
            return None

    def take_diagnosis(self) -> str | None:
        """After a failed connection attempt worth logging: why it failed, in one
        line (blocks up to a few seconds: call it from the agent's thread)."""
        if not self._diagnose.is_set():
            return None
        self._diagnose.clear()
        reason = diagnose(self.settings.broker_settings) or (
            f"{self.settings.address} did not answer CONNECT"
        )
        return (
            f"cannot connect to the broker: {reason} "
            f"(attempt {self._failed_attempts}; retrying with backoff)"
        )

    @property
    def dropped_chunks(self) -> int:
        """Chunks dropped because the inbox was full (they are requested again)."""
        return self._dropped

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def take_connect(self) -> bool:
        """True once after each successful (re)connect: time to re-announce."""
        if self._connect_pending.is_set():
            self._connect_pending.clear()
            return True
        return False

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def subscribe(self, topic: str) -> None:
        with self._lock:
            self._subscriptions.add(topic)
        if self.connected:
            self._client.subscribe(topic, qos=1)

    def unsubscribe(self, topic: str) -> None:
        with self._lock:
            self._subscriptions.discard(topic)
        if self.connected:
            self._client.unsubscribe(topic)

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> mqtt.MQTTMessageInfo:
        """Queue a message; paho sends it now or after the next reconnect (QoS 1)."""
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def stop(self, last_words: Sequence[tuple[str, bytes]] = (), timeout: float = 3.0) -> None:
        """Publish `last_words` (retained), wait briefly for them, then disconnect."""
        infos = []
        if self.connected:
            for topic, payload in last_words:
                infos.append(self._client.publish(topic, payload, qos=1, retain=True))
            for info in infos:
                try:
                    info.wait_for_publish(timeout)
                except (RuntimeError, ValueError) as exc:
                    log.warning("could not publish the final state: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
