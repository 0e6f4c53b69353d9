"""What machine a result was measured on: the result document's ``device`` object."""

from __future__ import annotations

import logging
import os
import platform
import re
import socket
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

# ARM "CPU part" codes (implementer 0x41 = ARM Ltd) of cores found on edge boards;
# /proc/cpuinfo on arm64 has no "model name", only these codes.
_ARM_PARTS: dict[int, str] = {
    0xD03: "Cortex-A53",
    0xD04: "Cortex-A35",
    0xD05: "Cortex-A55",
    0xD07: "Cortex-A57",
    0xD08: "Cortex-A72",
    0xD09: "Cortex-A73",
    0xD0A: "Cortex-A75",
    0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1",
    0xD0D: "Cortex-A77",
    0xD41: "Cortex-A78",
    0xD42: "Cortex-A78AE",
    0xD44: "Cortex-X1",
    0xD46: "Cortex-A510",
    0xD47: "Cortex-A710",
    0xD4B: "Cortex-A78C",
    0xD80: "Cortex-A520",
    0xD81: "Cortex-A720",
    0xB76: "ARM1176",
    0xC07: "Cortex-A7",
    0xC08: "Cortex-A8",
    0xC09: "Cortex-A9",
}
_NVIDIA_PARTS: dict[int, str] = {0x004: "NVIDIA Carmel"}


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _cpuinfo_fields(text: str) -> list[tuple[str, str]]:
    fields = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.append((key.strip(), value.strip()))
    return fields


def _first(fields: list[tuple[str, str]], key: str) -> str | None:
    for k, v in fields:
        if k == key and v:
            return v
    return None


def cpu_model(cpuinfo: str | None) -> str | None:
    """CPU model name from the text of /proc/cpuinfo.

    ``model name`` (x86, armv7) wins; else the ARM core named from its
    implementer/part codes (arm64 boards, e.g. "ARM Cortex-A72"); else
    ``Hardware`` (the SoC, e.g. "BCM2835") or ``cpu model`` (MIPS).
    """
    if not cpuinfo:
        return None
    fields = _cpuinfo_fields(cpuinfo)
    name = _first(fields, "model name")
    if name:
        return re.sub(r"\s+", " ", name)
    implementer, part = _first(fields, "CPU implementer"), _first(fields, "CPU part")
    if implementer and part:
        try:
            impl, code = int(implementer, 0), int(part, 0)
        except ValueError:
            impl, code = -1, -1
        table = {0x41: _ARM_PARTS, 0x4E: _NVIDIA_PARTS}.get(impl, {})
        if code in table:
            cores = {p for k, p in fields if k == "CPU part"}
            label = table[code]
            prefix = "ARM " if impl == 0x41 else ""
            # big.LITTLE: name every core type present, in order of appearance.
            if len(cores) > 1:
                names = []
                for k, p in fields:
                    if k == "CPU part":
                        try:
                            n = table.get(int(p, 0))
                        except ValueError:
                            n = None
                        if n and n not in names:
                            names.append(n)
                label = " + ".join(names)
            return prefix + label
    return _first(fields, "Hardware") or _first(fields, "cpu model") or _first(fields, "Model")


def board_model(root: str = "/") -> str | None:
    """Board model: device tree (Raspberry Pi, Jetson) or DMI vendor + product (PCs)."""
    model = _read(os.path.join(root, "proc/device-tree/model"))
    if model and model.strip("\x00\n "):
        return model.strip("\x00\n ")
    vendor = (_read(os.path.join(root, "sys/class/dmi/id/sys_vendor")) or "").strip()
    product = (_read(os.path.join(root, "sys/class/dmi/id/product_name")) or "").strip()
    placeholder = {"", "To Be Filled By O.E.M.", "System Product Name", "Default string"}
    if product not in placeholder:
        return f"{vendor} {product}".strip() if vendor not in placeholder else product
    return None


def os_name(root: str = "/") -> str | None:
    """PRETTY_NAME from os-release."""
    for rel in ("etc/os-release", "usr/lib/os-release"):
        text = _read(os.path.join(root, rel))
        if not text:
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "PRETTY_NAME":
                return value.strip().strip("\"'") or None
    return None


def ram_mb(root: str = "/") -> int | None:
    """Total RAM in MiB from /proc/meminfo (psutil as a fallback on the real root)."""
    text = _read(os.path.join(root, "proc/meminfo"))
    if text:
        match = re.search(r"^MemTotal:\s*(\d+)\s*kB", text, re.MULTILINE)
        if match:
            return int(match.group(1)) // 1024
    if root == "/":
        try:
            import psutil

            return int(psutil.virtual_memory().total) // (1024 * 1024)
        except Exception as exc:  # psutil is optional here; unknown is fine
            log.debug("psutil.virtual_memory failed: %s", exc)
    return None


def _cores(root: str, cpuinfo: str | None) -> int | None:
    if root == "/":
        return os.cpu_count()
    if cpuinfo:
        count = sum(1 for k, _ in _cpuinfo_fields(cpuinfo) if k == "processor")
        return count or None
    return None


def device_info(
    device_id: str | None = None, tags: Sequence[str] = (), *, root: str = "/"
) -> dict[str, Any]:
    """The result document's ``device`` object for this machine.

    ``{id, hostname, machine, arch, cpu, cores, ram_mb, os, python, tags}``;
    ``id`` defaults to the host name. ``root`` points the /proc, /sys and /etc
    readers elsewhere (tests); unknown fields are None.
    """
    hostname = socket.gethostname()
    arch = platform.machine() or None
    cpuinfo = _read(os.path.join(root, "proc/cpuinfo"))
    machine = board_model(root) or f"{platform.system()} {arch or 'unknown'}".strip()
    return {
        "id": device_id or hostname,
        "hostname": hostname,
        "machine": machine,
        "arch": arch,
        "cpu": cpu_model(cpuinfo) or (platform.processor() if root == "/" else None) or None,
        "cores": _cores(root, cpuinfo),
        "ram_mb": ram_mb(root),
        "os": os_name(root) or (platform.platform() if root == "/" else None),
        "kernel": platform.release() or None,
        "python": platform.python_version(),
        "tags": list(tags),
    }
