"""cxm — open-source Customer Experience Management platform."""

__version__ = "0.1.0"
