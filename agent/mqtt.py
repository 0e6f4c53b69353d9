"""The agent's MQTT session on paho-mqtt 2.x.

paho's network thread does no work here: callbacks only queue incoming messages
and remember that a (re)connect happened. Control messages (the device's own
``dev/{id}/job`` topic: manifests, acks, collect requests) have their own queue,
served first and never dropped in practice (bounded only by a generous count),
so a chunk flood cannot drown a job; chunks go to a bounded inbox that drops
when full (a lost chunk is requested again). Other agents' chunk requests,
which share the ``blob/{sha}/+`` filter with the chunks, are discarded here. Subscriptions
are (re)made in the connect callback, every time; the Last Will marks the
device offline. Reconnects use paho's backoff (1 s doubling to 30 s).
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

log = logging.getLogger(__name__)

INBOX_SIZE = 512
"""Chunks waiting to be written; beyond this they are dropped (and requested again)."""
CONTROL_QUEUE_SIZE = 10_000
"""Control messages waiting; far more than a host ever sends to one device at once."""


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
        control_size: int = CONTROL_QUEUE_SIZE,
    ) -> None:
        self.settings = settings
        self.control_topic = control_topic
        self._inbox: deque[Inbound] = deque()
        self._inbox_size = inbox_size
        self._control: deque[Inbound] = deque()
        self._control_size = control_size
        self._arrived = threading.Condition()
        self._control_dropped = 0
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
        if settings.tls:
            client.tls_set(
                ca_certs=settings.ca_cert,
                certfile=settings.client_cert,
                keyfile=settings.client_key,
            )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        self._client = client
        self._failed_attempts = 0

    # -- paho callbacks (network thread: no work here) ------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        with self._lock:
            topics = sorted(self._subscriptions)
        for topic in topics:
            client.subscribe(topic, qos=1)
        self._connected.set()
        self._connect_pending.set()
        self._failed_attempts = 0
        log.info("connected to %s", self.settings.broker)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self._connected.clear()
        log.warning("disconnected from the broker (%s); reconnecting with backoff", reason_code)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # The broker is down or unreachable: say so (the first time, then every
        # 10th try, so a long outage does not flood the journal); paho retries
        # with backoff (1 s doubling to 30 s).
        self._failed_attempts += 1
        if self._failed_attempts == 1 or self._failed_attempts % 10 == 0:
            log.warning(
                "cannot reach the broker at %s (attempt %d); retrying with backoff",
                self.settings.broker,
                self._failed_attempts,
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        if topic == self.control_topic:
            with self._arrived:
                if len(self._control) < self._control_size:
                    self._control.append(Inbound(topic, bytes(message.payload)))
                    self._arrived.notify()
                    return
            self._control_dropped += 1
            log.error(
                "!!! %d control messages waiting: dropped one (%d so far); the host "
                "re-sends unanswered manifests !!!",
                self._control_size,
                self._control_dropped,
            )
            return
        if topic.endswith("/request"):
            return  # another agent asking the host for chunks: nothing for us
        with self._arrived:
            if len(self._inbox) < self._inbox_size:
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
