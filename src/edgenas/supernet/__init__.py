"""Weight-sharing supernets: Once-for-All elastic layers, progressive shrinking, subnet evaluation."""

from edgenas.supernet.elastic import ElasticMBConv, elastic_batch_norm
from edgenas.supernet.ofa import ELASTIC_DIMS, OFASupernet

__all__ = ["ELASTIC_DIMS", "ElasticMBConv", "OFASupernet", "elastic_batch_norm"]
