"""Device profiles: datasheet memory sizes, CLI overrides in kB (1 kB = 1,024 B), fit checks."""

import pytest

from edgenas.errors import EdgenasError
from edgenas.hardware import DEVICES, device_from_args, get_device, list_devices


@pytest.mark.parametrize(
    ("name", "sram_kb", "flash_kb"),
    [("stm32f746", 320, 1024), ("stm32h743", 512, 2048), ("stm32f412", 256, 1024), ("nrf52840", 256, 1024)],
)
def test_mcu_profiles_have_datasheet_memory(name, sram_kb, flash_kb):
    d = get_device(name)
    assert (d.sram_bytes, d.flash_bytes) == (sram_kb * 1024, flash_kb * 1024)
    assert d.clock_mhz and d.core.startswith("Cortex")


def test_cpu_profile_has_no_limits_and_fits_anything():
    cpu = get_device("cpu")
    assert cpu.sram_bytes is None and cpu.flash_bytes is None
    assert cpu.fits(10**12, 10**12)


def test_overrides_are_kilobytes_and_keep_the_other_limit():
    d = device_from_args("stm32f746", sram_kb=256)
    assert (d.name, d.sram_bytes, d.flash_bytes) == ("stm32f746", 262_144, 1_048_576)
    assert get_device("stm32f746").sram_bytes == 327_680  # the registry is untouched
    custom = device_from_args(None, flash_kb=1.5)
    assert (custom.name, custom.sram_bytes, custom.flash_bytes) == ("custom", None, 1536)


def test_fits_is_inclusive_and_violations_name_the_resource():
    d = get_device("stm32f412")
    assert d.fits(1_048_576, 262_144)
    assert d.violations(1_048_577, 262_145) == [
        "peak SRAM 262,145 B > 262,144 B on stm32f412",
        "flash 1,048,577 B > 1,048,576 B on stm32f412",
    ]


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(EdgenasError, match="unknown device 'esp8266'; known devices: cpu, ") as e:
        device_from_args("esp8266")
    assert all(name in str(e.value) for name in DEVICES)
    assert [d.name for d in list_devices()] == sorted(DEVICES)


@pytest.mark.parametrize("bad", [0, -5, float("nan")])
def test_nonpositive_budget_is_rejected(bad):
    with pytest.raises(EdgenasError, match="--sram must be a positive number of kB"):
        device_from_args("cpu", sram_kb=bad)
