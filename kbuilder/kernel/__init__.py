"""Everything that drives a kernel tree: toolchain seam, builds, patches, VMs."""
