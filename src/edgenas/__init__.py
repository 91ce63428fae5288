"""edgenas: hardware-aware neural architecture search for tiny networks."""
__version__ = "0.1.0"
