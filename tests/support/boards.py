"""Recorded /proc, /sys and /etc trees of the boards edgeprof runs on.

Each board is the files its readers look at, as that board exposes them, with
where every part comes from. Power-sensor values are *set* by tests (they
inject known power), so the files here only fix the layout and idle values.

Sources (public; found with the workspace's code search, quoted, not copied):

- Raspberry Pi 4 /proc/cpuinfo (Raspberry Pi OS 64-bit): the four Cortex-A72
  cores (MIDR part 0xd08, variant 0x0, revision 3), ``Features: fp asimd evtstrm
  crc32 cpuid``, BogoMIPS 108.00, then ``Revision``/``Serial``/``Model`` — as in
  public dumps quoted in READMEs and tests on GitHub (e.g. "Revision c03111 ...
  Model : Raspberry Pi 4 Model B Rev 1.1"). Device tree: ``model`` is the
  firmware's board string; ``compatible`` ``raspberrypi,4-model-b`` +
  ``brcm,bcm2711`` (Linux arch/arm64/boot/dts/broadcom/bcm2711-rpi-4-b.dts).
- Raspberry Pi 5: /proc/cpuinfo verbatim from the README of a public Montgomery
  multiplication benchmark run on a Pi 5 (``cat /proc/cpuinfo``: four Cortex-A76,
  part 0xd0b, variant 0x4, ``Features: fp asimd evtstrm aes pmull sha1 sha2 crc32
  atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp``, ``Revision: d04170``,
  ``Model: Raspberry Pi 5 Model B Rev 1.0``); ``compatible`` from Linux's
  bcm2712-rpi-5-b.dts. ``vcgencmd pmic_read_adc``: the 26-line output captured
  live on a Pi 5 and kept verbatim as a test fixture in a public Go project
  (rail names, non-sequential channel indices, volt-only EXT5V/BATT).
- Jetson Nano, JetPack 4.6.1 (L4T R32.7.1, kernel 4.9): /proc/cpuinfo from a
  public Jetson Nano dump (``model name: ARMv8 Processor rev 1 (v8l)`` on every
  core — the 4.9 kernel's placeholder —, BogoMIPS 38.40, ``Features: fp asimd
  evtstrm aes pmull sha1 sha2 crc32``, part 0xd07 = Cortex-A57);
  /etc/nv_tegra_release verbatim from Arducam's Jetson Nano camera guide
  (``# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, ...``);
  INA3221 rails POM_5V_IN / POM_5V_GPU / POM_5V_CPU on the L4T ``ina3221x`` iio
  driver at 6-0040 (energymon's jetson/JetsonPowerRails.md, from L4T 32.6.1
  device trees and real boards); model/compatible from L4T's
  tegra210-p3448-0000-p3449-0000-b00 device tree.
- Jetson Orin Nano Developer Kit, JetPack 6 (L4T R36): model and ``compatible``
  from Linux arch/arm64/boot/dts/nvidia/tegra234-p3768-0000+p3767-0005.dts
  ("NVIDIA Jetson Orin Nano Developer Kit"; nvidia,p3768-0000+p3767-0005,
  nvidia,p3767-0005, nvidia,tegra234); cores Cortex-A78AE (MIDR 0x410FD420 in
  Arm Trusted Firmware's cortex_a78_ae.h; r0p1), BogoMIPS 62.50 and the Features
  line as ``lscpu`` shows them on an AGX Orin (same core; the warp-ik project's
  docs/specs/arm-agx.md); INA3221 via the mainline ``ina3221`` hwmon driver at
  1-0040 with channels VDD_IN, VDD_CPU_GPU_CV, VDD_SOC (NVIDIA Jetson Linux r36
  developer guide, "Jetson Orin Nano Series ... Power Monitoring"; file names
  in1_label / in1_input (mV) / curr1_input (mA) per the kernel's
  Documentation/hwmon/ina3221.rst, in7_label "sum of shunt voltages"); nvpmodel
  modes 0 = 15W, 1 = 7W (its /etc/nvpmodel.conf).
- Jetson AGX Orin Developer Kit, JetPack 6.2 (L4T R36.4.3): /etc/nv_tegra_release
  and the 12-core lscpu output verbatim from warp-ik's docs/specs/arm-agx.md;
  model/compatible from Linux's tegra234-p3737-0000+p3701-0000.dts; INA3221 at
  1-0040 (VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0) and 1-0041 (NC,
  VDDQ_VDD2_1V8AO, NC) — no VDD_IN; NVIDIA's guide (quoted in a public AGX Orin
  power scraper) says VDDQ_VDD2_1V8AO is included in VIN_SYS_5V0; energymon's
  jetson/README.md sums VDD_GPU_SOC, VDD_CPU_CV and VIN_SYS_5V0 for AGX Orin.
  nvpmodel modes 0 = MAXN, 1 = 15W, 2 = 30W, 3 = 50W.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def _cores(count: int, block: str, start: int = 0) -> str:
    return "".join(f"processor\t: {start + i}\n{block}\n" for i in range(count))


PI4_CORE = """BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3
"""
PI5_CORE = """BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1
"""
NANO_CORE = """model name\t: ARMv8 Processor rev 1 (v8l)
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd07
CPU revision\t: 1
"""
ORIN_CORE = """BogoMIPS\t: 62.50
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp uscat ilrcpc flagm paca pacg
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd42
CPU revision\t: 1
"""

PI5_PMIC_ADC = """ 3V7_WL_SW_A current(0)=0.00195186A
   3V3_SYS_A current(1)=0.12687090A
   1V8_SYS_A current(2)=0.18835450A
  DDR_VDD2_A current(3)=0.02147046A
  DDR_VDDQ_A current(4)=0.00000000A
   1V1_SYS_A current(5)=0.17957110A
    0V8_SW_A current(6)=0.25959740A
  VDD_CORE_A current(7)=0.56259000A
   3V3_DAC_A current(17)=0.00000000A
   3V3_ADC_A current(18)=0.00000000A
   0V8_AON_A current(16)=0.00293040A
      HDMI_A current(22)=0.02551890A
 3V7_WL_SW_V volt(8)=3.70720000V
   3V3_SYS_V volt(9)=3.32580900V
   1V8_SYS_V volt(10)=1.80415000V
  DDR_VDD2_V volt(11)=1.11135400V
  DDR_VDDQ_V volt(12)=0.60329610V
   1V1_SYS_V volt(13)=1.11282000V
    0V8_SW_V volt(14)=0.80512740V
  VDD_CORE_V volt(15)=0.76798460V
   3V3_DAC_V volt(20)=3.32142500V
   3V3_ADC_V volt(21)=3.32966700V
   0V8_AON_V volt(19)=0.80175740V
      HDMI_V volt(23)=5.11746000V
     EXT5V_V volt(24)=5.14158000V
      BATT_V volt(25)=3.28033900V
"""
"""``vcgencmd pmic_read_adc`` on a Pi 5, verbatim (see the module docstring)."""

ORIN_NANO_HWMON = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
AGX_HWMON_40 = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
AGX_HWMON_41 = "sys/bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon2"
NANO_IIO = "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"


def _ina3221_channels(base: str, rails: list[tuple[str, int, int]]) -> dict[str, str]:
    """hwmon files of one INA3221: (label, mV, mA) for channels 1..3, plus the sum channel."""
    files = {f"{base}/name": "ina3221\n", f"{base}/in7_label": "sum of shunt voltages\n"}
    for index, (label, mv, ma) in enumerate(rails, start=1):
        files[f"{base}/in{index}_label"] = label + "\n"
        files[f"{base}/in{index}_input"] = f"{mv}\n"
        files[f"{base}/curr{index}_input"] = f"{ma}\n"
        files[f"{base}/in{index + 3}_input"] = f"{ma * 5}\n"  # shunt µV (5 mΩ): never read
    return files


@dataclass
class Board:
    """A board's recorded tree and what edgeprof should read from it."""

    name: str
    files: dict[str, str] = field(default_factory=dict)

    def write(self, root: Path) -> Path:
        for rel, text in self.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return root


PI4 = Board(
    "pi4",
    {
        "proc/cpuinfo": _cores(4, PI4_CORE)
        + "Revision\t: c03114\nSerial\t\t: 100000008b6a0e5c\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
        "proc/device-tree/model": "Raspberry Pi 4 Model B Rev 1.4\x00",
        "proc/device-tree/compatible": "raspberrypi,4-model-b\x00brcm,bcm2711\x00",
        "proc/meminfo": "MemTotal:        3884376 kB\n",
        "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    },
)

PI5 = Board(
    "pi5",
    {
        "proc/cpuinfo": _cores(4, PI5_CORE)
        + "Revision\t: d04170\nSerial\t\t: 94e9857859362cfa\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n",
        "proc/device-tree/model": "Raspberry Pi 5 Model B Rev 1.0\x00",
        "proc/device-tree/compatible": "raspberrypi,5-model-b\x00brcm,bcm2712\x00",
        "proc/meminfo": "MemTotal:        8245564 kB\n",
        "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    },
)

JETSON_NANO = Board(
    "jetson-nano",
    {
        "proc/cpuinfo": _cores(4, NANO_CORE),
        "proc/device-tree/model": "NVIDIA Jetson Nano Developer Kit\x00",
        "proc/device-tree/compatible": (
            "nvidia,p3449-0000-b00+p3448-0000-b00\x00nvidia,jetson-nano\x00nvidia,tegra210\x00"
        ),
        "proc/meminfo": "MemTotal:        4059712 kB\n",
        "etc/os-release": 'PRETTY_NAME="Ubuntu 18.04.6 LTS"\n',
        "etc/nv_tegra_release": (
            "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
            "DATE: Sat Feb 19 17:05:08 UTC 2022\n"
        ),
        "etc/nvpmodel.conf": "< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=1 NAME=5W >\n",
        "var/lib/nvpmodel/status": "pmode:0000\n",
        f"{NANO_IIO}/rail_name_0": "POM_5V_IN\n",
        f"{NANO_IIO}/rail_name_1": "POM_5V_GPU\n",
        f"{NANO_IIO}/rail_name_2": "POM_5V_CPU\n",
        f"{NANO_IIO}/in_power0_input": "1232\n",
        f"{NANO_IIO}/in_power1_input": "40\n",
        f"{NANO_IIO}/in_power2_input": "202\n",
        f"{NANO_IIO}/in_voltage0_input": "5056\n",
        f"{NANO_IIO}/in_current0_input": "244\n",
    },
)

ORIN_NANO = Board(
    "orin-nano",
    {
        "proc/cpuinfo": _cores(6, ORIN_CORE),
        "proc/device-tree/model": "NVIDIA Jetson Orin Nano Developer Kit\x00",
        "proc/device-tree/compatible": (
            "nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00"
        ),
        "proc/meminfo": "MemTotal:        7802868 kB\n",
        "etc/os-release": 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\n',
        "etc/nv_tegra_release": (
            "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64, "
            "DATE: Fri Jul 19 23:24:25 UTC 2024\n# KERNEL_VARIANT: oot\n"
        ),
        "etc/nvpmodel.conf": "< POWER_MODEL ID=0 NAME=15W >\n< POWER_MODEL ID=1 NAME=7W >\n",
        "var/lib/nvpmodel/status": "pmode:0001\n",
        **_ina3221_channels(
            ORIN_NANO_HWMON,
            [("VDD_IN", 5064, 880), ("VDD_CPU_GPU_CV", 4960, 160), ("VDD_SOC", 4968, 248)],
        ),
    },
)

AGX_ORIN = Board(
    "agx-orin",
    {
        "proc/cpuinfo": _cores(12, ORIN_CORE),
        "proc/device-tree/model": "NVIDIA Jetson AGX Orin Developer Kit\x00",
        "proc/device-tree/compatible": (
            "nvidia,p3737-0000+p3701-0000\x00nvidia,p3701-0000\x00nvidia,tegra234\x00"
        ),
        "proc/meminfo": "MemTotal:        30536208 kB\n",
        "etc/os-release": 'PRETTY_NAME="Ubuntu 22.04.5 LTS"\n',
        "etc/nv_tegra_release": (
            "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
            "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\n"
            "TARGET_USERSPACE_LIB_DIR=nvidia\n"
            "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n"
        ),
        "etc/nvpmodel.conf": (
            "< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=1 NAME=15W >\n"
            "< POWER_MODEL ID=2 NAME=30W >\n< POWER_MODEL ID=3 NAME=50W >\n"
        ),
        "var/lib/nvpmodel/status": "pmode:0003\n",
        **_ina3221_channels(
            AGX_HWMON_40,
            [("VDD_GPU_SOC", 19984, 240), ("VDD_CPU_CV", 19984, 80), ("VIN_SYS_5V0", 4984, 600)],
        ),
        **_ina3221_channels(
            AGX_HWMON_41, [("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 4984, 120), ("NC", 0, 0)]
        ),
    },
)

BOARDS = {b.name: b for b in (PI4, PI5, JETSON_NANO, ORIN_NANO, AGX_ORIN)}
