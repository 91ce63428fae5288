"""Every reference model module; importing this registers them all."""

from edgenas.models import (  # noqa: F401
    mcunet,
    mnasnet,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    resnet,
    shufflenet,
)
