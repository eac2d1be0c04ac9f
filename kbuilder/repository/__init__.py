"""A signed, static repository of livepatch modules (docs/repository.md).

    keys      Ed25519 key pairs, the detached signature file
    index     the index format: Index, Artifact, FileRef, parse_index
    store     writing: init, add, promote, refresh, verify (a local tree)
    client    reading: open_source (file://, http:// on loopback, https://),
              fetch_index (every check), download (hash and size)
    serve     the loopback HTTP server of `kbuild repo serve`
    modsign   the kernel's appended module signatures (scripts/sign-file)
    durable   crash-safe writes and the test crash points
    errors    the refusals: BadSignature, UnknownKey, ExpiredIndex, ...
"""
