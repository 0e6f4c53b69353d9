"""device_info on fake /proc and /etc trees of real boards, and on this machine."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from profiler import device

PI4_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

processor\t: 1
CPU implementer\t: 0x41
CPU part\t: 0xd08

Hardware\t: BCM2835
Revision\t: c03114
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz
processor\t: 1
model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz
"""


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_raspberry_pi(tmp_path: Path) -> None:
    _write(tmp_path, "proc/cpuinfo", PI4_CPUINFO)
    _write(tmp_path, "proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\x00")
    _write(tmp_path, "proc/meminfo", "MemTotal:        3884376 kB\nMemFree: 1 kB\n")
    _write(
        tmp_path,
        "etc/os-release",
        'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    )
    info = device.device_info("pi-lab-1", ["pi4", "lab"], root=str(tmp_path))
    assert info["id"] == "pi-lab-1"
    assert info["machine"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert info["cpu"] == "ARM Cortex-A72"
    assert info["cores"] == 2
    assert info["ram_mb"] == 3793
    assert info["os"] == "Debian GNU/Linux 12 (bookworm)"
    assert info["tags"] == ["pi4", "lab"]
    json.dumps(info)


def test_x86_pc_uses_model_name_and_dmi(tmp_path: Path) -> None:
    _write(tmp_path, "proc/cpuinfo", X86_CPUINFO)
    _write(tmp_path, "sys/class/dmi/id/sys_vendor", "LENOVO\n")
    _write(tmp_path, "sys/class/dmi/id/product_name", "ThinkPad T480\n")
    info = device.device_info(root=str(tmp_path))
    assert info["cpu"] == "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz"
    assert info["machine"] == "LENOVO ThinkPad T480"
    assert info["id"] == info["hostname"] == socket.gethostname()
    assert info["os"] is None and info["ram_mb"] is None


def test_big_little_and_unknown_parts() -> None:
    rk3588 = "".join(
        f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: {p}\n"
        for i, p in enumerate(["0xd05"] * 4 + ["0xd0b"] * 4)
    )
    assert device.cpu_model(rk3588) == "ARM Cortex-A55 + Cortex-A76"
    odd = "CPU implementer\t: 0x51\nCPU part\t: 0x801\nHardware\t: Qualcomm Snapdragon\n"
    assert device.cpu_model(odd) == "Qualcomm Snapdragon"
    assert device.cpu_model("") is None


def test_this_machine() -> None:
    info = device.device_info()
    assert info["cores"] == os.cpu_count()
    assert info["ram_mb"] and info["ram_mb"] > 0
    assert info["python"].count(".") == 2
    assert set(info) >= {
        "id",
        "hostname",
        "machine",
        "arch",
        "cpu",
        "cores",
        "ram_mb",
        "os",
        "tags",
    }
