"""Search spaces: one protocol (:class:`SearchSpace`), many spaces, a registry."""

from edgenas.spaces.base import SPACES, Arch, Dim, SearchSpace, get_space, list_spaces, register_space

__all__ = ["SPACES", "Arch", "Dim", "SearchSpace", "get_space", "list_spaces", "register_space"]
