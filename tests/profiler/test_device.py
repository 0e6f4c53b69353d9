"""device_info on fake /proc and /etc trees of real boards, and on this machine."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

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


# --------------------------------------------------------------------------- boards
# Recorded trees of real boards: tests/support/boards.py says where each file's
# content comes from (public dumps, kernel device trees, NVIDIA's developer guide).


def _board(tmp_path: Path, name: str) -> dict[str, object]:
    from tests.support.boards import BOARDS

    root = BOARDS[name].write(tmp_path)
    return device.device_info(root=str(root))


def test_pi4_is_named_and_has_no_dot_product(tmp_path: Path) -> None:
    info = _board(tmp_path, "pi4")
    board = info["board"]
    assert isinstance(board, dict)
    assert info["machine"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert board["compatible"] == ["raspberrypi,4-model-b", "brcm,bcm2711"]
    assert board["soc"] == "Broadcom BCM2711"
    assert info["cpu"] == "ARM Cortex-A72" and info["cores"] == 4
    assert board["cpu_cores"] == {"Cortex-A72": 4}
    # The Pi 4's A72 has no int8 dot product and no fp16 arithmetic: int8 and
    # fp16 models run on plain NEON there.
    assert board["cpu_features"] == {
        "isa": "arm64",
        "present": ["asimd"],
        "missing": ["asimddp", "fphp", "asimdhp", "i8mm", "bf16", "sve", "sve2", "sme"],
    }
    assert board["l4t"] is None and board["power_mode"] is None


def test_pi5_has_dot_product_and_fp16_but_no_i8mm_or_sve(tmp_path: Path) -> None:
    info = _board(tmp_path, "pi5")
    board = info["board"]
    assert isinstance(board, dict)
    assert info["machine"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert board["soc"] == "Broadcom BCM2712"
    assert info["cpu"] == "ARM Cortex-A76"
    features = board["cpu_features"]
    assert isinstance(features, dict)
    assert features["present"] == ["asimd", "asimddp", "fphp", "asimdhp"]
    assert {"i8mm", "sve"} <= set(features["missing"])
    assert info["os"] == "Debian GNU/Linux 12 (bookworm)"


def test_jetson_nano_jetpack4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no nvpmodel: the status file
    info = _board(tmp_path, "jetson-nano")
    board = info["board"]
    assert isinstance(board, dict)
    assert info["machine"] == "NVIDIA Jetson Nano Developer Kit"
    assert board["soc"] == "NVIDIA Tegra X1 (T210)"
    # "model name: ARMv8 Processor rev 1 (v8l)" is the 4.9 kernel's placeholder:
    # the MIDR codes name the core instead.
    assert info["cpu"] == "ARM Cortex-A57"
    assert board["l4t"] == {"l4t": "32.7.1", "jetpack": "4.6.1", "board": "t210ref"}
    assert board["power_mode"] == {"name": "MAXN", "id": 0, "source": "status"}
    features = board["cpu_features"]
    assert isinstance(features, dict) and features["present"] == ["asimd"]


def test_orin_nano_jetpack6(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    info = _board(tmp_path, "orin-nano")
    board = info["board"]
    assert isinstance(board, dict)
    assert info["machine"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert board["soc"] == "NVIDIA Orin (T234)"
    assert info["cpu"] == "ARM Cortex-A78AE" and info["cores"] == 6
    assert board["cpu_cores"] == {"Cortex-A78AE": 6}
    assert board["l4t"] == {"l4t": "36.3.0", "jetpack": "6.0", "board": "generic"}
    assert board["power_mode"] == {"name": "7W", "id": 1, "source": "status"}
    features = board["cpu_features"]
    assert isinstance(features, dict)
    assert features["present"] == ["asimd", "asimddp", "fphp", "asimdhp"]


def test_agx_orin_jetpack62(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    info = _board(tmp_path, "agx-orin")
    board = info["board"]
    assert isinstance(board, dict)
    assert info["machine"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert info["cores"] == 12 and info["ram_mb"] == 29820
    assert board["l4t"] == {"l4t": "36.4.3", "jetpack": "6.2", "board": "generic"}
    assert board["power_mode"] == {"name": "50W", "id": 3, "source": "status"}


def test_nvpmodel_tool_wins_on_the_real_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    script = tools / "nvpmodel"
    script.write_text("#!/bin/sh\necho 'NV Power Mode: MAXN_SUPER'\necho 2\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}/bin{os.pathsep}/usr/bin")
    assert device.power_mode("/") == {"name": "MAXN_SUPER", "id": 2, "source": "nvpmodel"}
    # A recorded tree never runs the machine's own tools.
    from tests.support.boards import BOARDS

    root = BOARDS["orin-nano"].write(tmp_path / "tree")
    assert device.power_mode(str(root)) == {"name": "7W", "id": 1, "source": "status"}


def test_x86_features_and_no_board(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "proc/cpuinfo",
        X86_CPUINFO.replace(
            "model name", "flags\t\t: fpu sse2 avx2 fma f16c avx512f avx512_vnni\nmodel name", 1
        ),
    )
    board = device.board_info(str(tmp_path))
    assert board["model"] is None and board["compatible"] == [] and board["soc"] is None
    assert board["cpu_features"]["isa"] == "x86"
    assert board["cpu_features"]["present"] == ["avx2", "fma", "f16c", "avx512f", "avx512_vnni"]


def test_unknown_l4t_release_keeps_l4t_without_jetpack(tmp_path: Path) -> None:
    _write(tmp_path, "etc/nv_tegra_release", "# R38 (release), REVISION: 1, GCID: 1\n")
    assert device.l4t_release(str(tmp_path)) == {"l4t": "38.1.0", "jetpack": None, "board": None}
    _write(tmp_path, "etc/nv_tegra_release", "garbage\n")
    assert device.l4t_release(str(tmp_path)) is None
