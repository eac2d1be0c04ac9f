"""The livepatch agent: fetches signed livepatches from a repository
(kbuilder.repository) and keeps the running kernel at the level its
policy asks for (docs/agent.md).

    config    agent.toml: repository URL, pinned keys, channel, policy
    kernel    the Kernel seam (SysfsKernel: sysfs under a root, insmod/rmmod)
    journal   the crash-safe state: an append-only, checksummed journal
    policy    decide(): from index, kernel and policy to steps
    agent     Agent: status, check, update, rollback, unload_all, pin, set_auto_update
    errors    the refusals: WrongKernel, DependencyMissing, SeverityBelowPolicy, ...
"""
