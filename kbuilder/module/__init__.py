"""From diff outputs to a loadable livepatch module: generated source,
kbuild, the livepatch ELF rewrite, and the checks on the result."""
