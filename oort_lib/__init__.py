"""oort_lib: the library behind the oort-sync command (one module per noun)."""

__version__ = "0.1.0"
