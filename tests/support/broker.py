"""A real Mosquitto broker on a free loopback port, which tests can stop and
restart (fault tests) — never a mock. It may take the security setup of
docs/agent.md: a TLS listener (with or without client certificates), a
password file and an ACL file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass(frozen=True)
class BrokerTls:
    """The TLS listener: the broker's certificate, and the CA it trusts for clients."""

    ca_cert: Path
    cert: Path
    key: Path
    require_certificate: bool = False
    use_identity_as_username: bool = False
    """The client certificate's CN is the user name (the ACL's %u)."""

    def lines(self) -> list[str]:
        lines = [f"cafile {self.ca_cert}", f"certfile {self.cert}", f"keyfile {self.key}"]
        if self.require_certificate:
            lines.append("require_certificate true")
        if self.use_identity_as_username:
            lines.append("use_identity_as_username true")
        return lines


def write_password_file(path: Path, users: Mapping[str, str]) -> Path:
    """A mosquitto password file (hashed by mosquitto_passwd) for `users`."""
    exe = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    for index, (user, password) in enumerate(users.items()):
        flags = ["-b", "-c"] if index == 0 else ["-b"]
        subprocess.run([exe, *flags, str(path), user, password], check=True, capture_output=True)
    return path


class MosquittoBroker:
    """A mosquitto process bound to 127.0.0.1:`port` with its own config/log.

    Plain and anonymous by default; `tls`, `password_file` (then no anonymous
    clients) and `acl` (the text of an ACL file) give the setup of docs/agent.md.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        tls: BrokerTls | None = None,
        password_file: Path | None = None,
        acl: str | None = None,
        allow_anonymous: bool | None = None,
    ) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto is not installed: apt-get install mosquitto")
        self.exe = exe
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.tls = tls is not None
        security = ["per_listener_settings false"]
        if os.geteuid() == 0:
            # Started as root, mosquitto drops to the "mosquitto" user, which cannot
            # read the test's private temporary files (keys, password file, log).
            security.append("user root")
        listener = [f"listener {self.port} 127.0.0.1", *(tls.lines() if tls else [])]
        if allow_anonymous is None:
            allow_anonymous = password_file is None and not (tls and tls.use_identity_as_username)
        security.append(f"allow_anonymous {'true' if allow_anonymous else 'false'}")
        if password_file is not None:
            security.append(f"password_file {password_file}")
        if acl is not None:
            acl_path = workdir / "edgeprof.acl"
            acl_path.write_text(acl)
            security.append(f"acl_file {acl_path}")
        self.config.write_text(
            "\n".join(
                [
                    *security,
                    *listener,
                    "persistence false",
                    # Generous limits: a push of a 20 MB model queues many chunks.
                    "max_queued_messages 100000",
                    "max_inflight_messages 0",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    f"log_dest file {self.log}",
                    "",
                ]
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
