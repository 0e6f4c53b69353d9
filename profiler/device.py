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
_GENERIC_ARM_NAME = re.compile(r"^ARMv\d+ Processor rev \d+", re.IGNORECASE)

CPU_SPEED_FEATURES: dict[str, tuple[str, ...]] = {
    # arm64 hwcaps as /proc/cpuinfo names them (kernel Documentation/arch/arm64/elf_hwcaps.rst)
    "arm64": ("asimd", "asimddp", "fphp", "asimdhp", "i8mm", "bf16", "sve", "sve2", "sme"),
    # x86 flags that decide int8 / fp16 kernels (VNNI dot products, AMX tiles, F16C, AVX512-FP16)
    "x86": (
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512_vnni",
        "avx_vnni",
        "avx512_bf16",
        "avx512_fp16",
        "amx_int8",
        "amx_bf16",
    ),
}
"""CPU features that decide which int8/fp16 kernels a runtime can use, by ISA.

arm64: ``asimddp`` (SDOT/UDOT int8 dot product: ~4x int8 GEMM throughput),
``fphp``/``asimdhp`` (fp16 arithmetic), ``i8mm`` (int8 matrix multiply),
``bf16``, ``sve``/``sve2``/``sme`` (scalable vectors). A Pi 4's Cortex-A72 has
none of the dot-product/fp16 ones, a Pi 5's Cortex-A76 and Orin's Cortex-A78AE
have ``asimddp`` and fp16 but neither ``i8mm`` nor ``sve``.
"""

# SoC names by the last (most generic) device-tree ``compatible`` entry.
_SOCS: dict[str, str] = {
    "brcm,bcm2835": "Broadcom BCM2835",
    "brcm,bcm2836": "Broadcom BCM2836",
    "brcm,bcm2837": "Broadcom BCM2837",
    "brcm,bcm2711": "Broadcom BCM2711",
    "brcm,bcm2712": "Broadcom BCM2712",
    "nvidia,tegra210": "NVIDIA Tegra X1 (T210)",
    "nvidia,tegra186": "NVIDIA Tegra X2 (T186)",
    "nvidia,tegra194": "NVIDIA Xavier (T194)",
    "nvidia,tegra234": "NVIDIA Orin (T234)",
    "rockchip,rk3588": "Rockchip RK3588",
    "rockchip,rk3399": "Rockchip RK3399",
    "amlogic,g12b": "Amlogic S922X (G12B)",
}

# L4T release (/etc/nv_tegra_release) → JetPack, from NVIDIA's JetPack archive
# (developer.nvidia.com/embedded/jetpack-archive): the L4T a JetPack ships.
_JETPACK: dict[str, str] = {
    "32.4.3": "4.4",
    "32.4.4": "4.4.1",
    "32.5.0": "4.5",
    "32.5.1": "4.5.1",
    "32.6.1": "4.6",
    "32.7.1": "4.6.1",
    "32.7.2": "4.6.2",
    "32.7.3": "4.6.3",
    "32.7.4": "4.6.4",
    "32.7.5": "4.6.5",
    "32.7.6": "4.6.6",
    "35.1.0": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "35.6.1": "5.1.5",
    "36.2.0": "6.0 DP",
    "36.3.0": "6.0",
    "36.4.0": "6.1",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
}


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
    # JetPack 4's 4.9 kernel prints "ARMv8 Processor rev 1 (v8l)" for every
    # core: a placeholder, not a name; the MIDR codes below say more.
    if name and not _GENERIC_ARM_NAME.match(name):
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


def _dt_strings(root: str, name: str) -> list[str]:
    """A device-tree property as its NUL-separated strings (``compatible``)."""
    for base in ("proc/device-tree", "sys/firmware/devicetree/base"):
        raw = _read(os.path.join(root, base, name))
        if raw is not None:
            return [part.strip() for part in raw.split("\x00") if part.strip()]
    return []


def soc_name(compatible: Sequence[str]) -> str | None:
    """The SoC from device-tree ``compatible`` strings (most specific board first, SoC last)."""
    for entry in reversed(compatible):
        if entry in _SOCS:
            return _SOCS[entry]
    if compatible:
        _vendor, _, chip = compatible[-1].partition(",")
        return chip.upper() if chip else None
    return None


def cpu_cores(cpuinfo: str | None) -> dict[str, int] | None:
    """Core types and their counts from MIDR codes, e.g. {"Cortex-A55": 4, "Cortex-A76": 4}."""
    if not cpuinfo:
        return None
    counts: dict[str, int] = {}
    implementer: int | None = None
    for key, value in _cpuinfo_fields(cpuinfo):
        try:
            if key == "CPU implementer":
                implementer = int(value, 0)
            elif key == "CPU part" and implementer is not None:
                part = int(value, 0)
                table = {0x41: _ARM_PARTS, 0x4E: _NVIDIA_PARTS}.get(implementer, {})
                label = table.get(part, f"0x{implementer:02x}:0x{part:03x}")
                counts[label] = counts.get(label, 0) + 1
        except ValueError:
            continue
    return counts or None


def cpu_features(cpuinfo: str | None) -> dict[str, Any] | None:
    """The int8/fp16-deciding CPU features present: ``{isa, present[], missing[]}``.

    From the first ``Features`` (arm64) or ``flags`` (x86) line of /proc/cpuinfo;
    None when there is neither.
    """
    if not cpuinfo:
        return None
    fields = _cpuinfo_fields(cpuinfo)
    arm = _first(fields, "Features")
    x86 = _first(fields, "flags")
    isa, line = ("arm64", arm) if arm else ("x86", x86) if x86 else (None, None)
    if isa is None or line is None:
        return None
    have = set(line.split())
    wanted = CPU_SPEED_FEATURES[isa]
    return {
        "isa": isa,
        "present": [f for f in wanted if f in have],
        "missing": [f for f in wanted if f not in have],
    }


def l4t_release(root: str = "/") -> dict[str, Any] | None:
    """Jetson Linux (L4T) release from /etc/nv_tegra_release, with the JetPack that ships it.

    The file's first line reads ``# R36 (release), REVISION: 3.0, GCID: ...,
    BOARD: generic, EABI: aarch64, DATE: ...``; ``jetpack`` is None for an L4T
    release not in the table.
    """
    text = _read(os.path.join(root, "etc/nv_tegra_release"))
    if not text:
        return None
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not match:
        return None
    revision = match.group(2)
    if revision.count(".") == 0:
        revision += ".0"
    l4t = f"{match.group(1)}.{revision}"
    board = re.search(r"BOARD:\s*([\w.-]+)", text)
    return {
        "l4t": l4t,
        "jetpack": _JETPACK.get(l4t),
        "board": board.group(1) if board else None,
    }


def _nvpmodel_names(root: str) -> dict[int, str]:
    """Power-mode names by id from /etc/nvpmodel.conf (``< POWER_MODEL ID=0 NAME=15W >``)."""
    text = _read(os.path.join(root, "etc/nvpmodel.conf"))
    if not text:
        return {}
    return {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)", text)
    }


def power_mode(root: str = "/") -> dict[str, Any] | None:
    """The Jetson power mode ``{id, name, source}`` (nvpmodel), None elsewhere.

    ``nvpmodel -q`` on the real root; else /var/lib/nvpmodel/status; a missing
    name is looked up in /etc/nvpmodel.conf.
    """
    from profiler.environment import jetson_power_mode

    mode = jetson_power_mode(root, use_tool=root == "/")
    if mode is None:
        return None
    if mode.get("name") is None and mode.get("id") is not None:
        mode["name"] = _nvpmodel_names(root).get(int(mode["id"]))
    return mode


def board_info(root: str = "/", cpuinfo: str | None = None) -> dict[str, Any]:
    """``device.board``: what the board says about itself (device tree, L4T, nvpmodel).

    ``{model, compatible[], soc, cpu_cores{type: count}, cpu_features{isa,
    present[], missing[]}, l4t{l4t, jetpack, board}, power_mode{id, name,
    source}}``; absent parts are None (a PC has no device tree).
    """
    if cpuinfo is None:
        cpuinfo = _read(os.path.join(root, "proc/cpuinfo"))
    model = _dt_strings(root, "model")
    compatible = _dt_strings(root, "compatible")
    return {
        "model": model[0] if model else None,
        "compatible": compatible,
        "soc": soc_name(compatible),
        "cpu_cores": cpu_cores(cpuinfo),
        "cpu_features": cpu_features(cpuinfo),
        "l4t": l4t_release(root),
        "power_mode": power_mode(root),
    }


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

    ``{id, hostname, machine, arch, cpu, cores, ram_mb, os, python, tags,
    board{...}}`` (``board``: see :func:`board_info`); ``id`` defaults to the
    host name. ``root`` points the /proc, /sys and /etc readers elsewhere
    (tests); unknown fields are None.
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
        "board": board_info(root, cpuinfo),
    }
