"""Hardware: device profiles (memory limits) for hardware-aware search."""

from edgenas.hardware.devices import (
    DEVICES,
    KB,
    DeviceProfile,
    device_from_args,
    get_device,
    list_devices,
    register_device,
)

__all__ = [
    "DEVICES", "KB", "DeviceProfile", "device_from_args", "get_device", "list_devices", "register_device",
]
