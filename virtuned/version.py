"""The compiler's version, recorded in every output's provenance and every lock."""

__version__ = "0.1.0"
