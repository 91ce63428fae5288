"""Device profiles: how much SRAM (activations) and flash (weights) a target has.

A registry of named boards, plus :func:`device_from_args` for the CLI's
``--device NAME --sram KB --flash KB``. Sizes are bytes; 1 kB = 1,024 bytes, as MCU
datasheets count. ``None`` means no limit (a desktop CPU).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from edgenas.errors import EdgenasError

KB = 1024


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    name: str
    sram_bytes: int | None  # memory for activations (None: unlimited)
    flash_bytes: int | None  # memory for weights (None: unlimited)
    clock_mhz: int | None = None
    core: str = ""
    note: str = ""

    def violations(self, flash_bytes: int, peak_sram_bytes: int) -> list[str]:
        """What does not fit, one readable line each (empty: the model fits)."""
        out = []
        if self.sram_bytes is not None and peak_sram_bytes > self.sram_bytes:
            out.append(f"peak SRAM {peak_sram_bytes:,} B > {self.sram_bytes:,} B on {self.name}")
        if self.flash_bytes is not None and flash_bytes > self.flash_bytes:
            out.append(f"flash {flash_bytes:,} B > {self.flash_bytes:,} B on {self.name}")
        return out

    def fits(self, flash_bytes: int, peak_sram_bytes: int) -> bool:
        return not self.violations(flash_bytes, peak_sram_bytes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DEVICES: dict[str, DeviceProfile] = {}


def register_device(device: DeviceProfile) -> DeviceProfile:
    if device.name in DEVICES:
        raise ValueError(f"device {device.name!r} registered twice")
    DEVICES[device.name] = device
    return device


for _d in (
    DeviceProfile("stm32f746", 320 * KB, 1024 * KB, 216, "Cortex-M7",
                  "STM32F746G-Discovery, MCUNet's main board"),
    DeviceProfile("stm32h743", 512 * KB, 2048 * KB, 480, "Cortex-M7",
                  "STM32H743, MCUNet's 512 kB / 2 MB setting"),
    DeviceProfile("stm32f412", 256 * KB, 1024 * KB, 100, "Cortex-M4", "STM32F412, MCUNet's smallest board"),
    DeviceProfile("nrf52840", 256 * KB, 1024 * KB, 64, "Cortex-M4F", "Nordic nRF52840 (Arduino Nano 33 BLE)"),
    DeviceProfile("rp2040", 264 * KB, 2048 * KB, 133, "Cortex-M0+", "Raspberry Pi Pico, 2 MB QSPI flash"),
    DeviceProfile("cpu", None, None, None, "x86/ARM", "desktop or server CPU: no memory limits"),
):
    register_device(_d)


def list_devices() -> list[DeviceProfile]:
    return [DEVICES[k] for k in sorted(DEVICES)]


def get_device(name: str) -> DeviceProfile:
    if name not in DEVICES:
        raise EdgenasError(f"unknown device {name!r}; known devices: {', '.join(sorted(DEVICES))}")
    return DEVICES[name]


def _kb(what: str, value: float | None) -> int | None:
    if value is None:
        return None
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise EdgenasError(f"--{what} must be a positive number of kB (1 kB = 1,024 B), got {value}")
    return round(value * KB)


def device_from_args(
    name: str | None, sram_kb: float | None = None, flash_kb: float | None = None
) -> DeviceProfile:
    """A named device, with ``--sram``/``--flash`` (kB) overriding its limits when given.

    No name: a "custom" device with just the given limits (unlimited where not given).
    """
    if name is None:
        base = DeviceProfile("custom", None, None, note="limits from --sram/--flash")
    else:
        base = get_device(name)
    sram, flash = _kb("sram", sram_kb), _kb("flash", flash_kb)
    if sram is not None:
        base = dataclasses.replace(base, sram_bytes=sram)
    if flash is not None:
        base = dataclasses.replace(base, flash_bytes=flash)
    return base
