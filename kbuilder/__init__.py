"""kbuilder: build Linux livepatch modules from kernel source patches."""

__version__ = "0.1.0"
