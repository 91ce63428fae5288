"""Zero-cost proxies: score an untrained network in one or two passes (NASLib definitions).

    from edgenas.estimate.proxies import compute_proxy, proxy_batch
    batch = proxy_batch("digits", n=64)
    score = compute_proxy("synflow", model, batch, seed=0)
"""

from edgenas.estimate.proxies.base import (
    PROXIES,
    Batch,
    ProxyInfo,
    compute_proxies,
    compute_proxy,
    get_proxy,
    list_proxies,
    parse_proxy_names,
    register_proxy,
)
from edgenas.estimate.proxies.data import proxy_batch, proxy_sources

__all__ = [
    "PROXIES", "Batch", "ProxyInfo", "compute_proxies", "compute_proxy", "get_proxy",
    "list_proxies", "parse_proxy_names", "proxy_batch", "proxy_sources", "register_proxy",
]
