"""Every reference model module; importing this registers them all."""

from edgenas.models import mobilenet_v2  # noqa: F401
