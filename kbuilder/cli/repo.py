"""`kbuild repo ...`: make, fill, promote, verify and serve a signed
livepatch repository (docs/repository.md)."""

from __future__ import annotations

import json
from datetime import timedelta

import click

from kbuilder.errors import InputError


def _duration(text: str | None) -> timedelta | None:
    from kbuilder.repository.index import parse_duration

    if text is None:
        return None
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if value <= timedelta(0):
        raise click.BadParameter(f"{text!r} must be positive")
    return value


@click.group()
def repo() -> None:
    """A signed repository of livepatch modules: a static tree any web
    server can serve (docs/repository.md)."""


@repo.command()
@click.option("--out", "out", default="repo.key", show_default=True, type=click.Path(dir_okay=False),
              help="The private key file; the public key goes to OUT.pub.")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen(out: str, force: bool) -> None:
    """Make an Ed25519 signing key pair for a repository."""
    from kbuilder.repository.keys import generate, write_keypair

    key = generate()
    public = write_keypair(key, out, force=force)
    click.echo(f"private key: {out} (mode 0600; keep it off the served tree)")
    click.echo(f"public key:  {public} (key id {key.public.keyid}); pin it in each agent's configuration:")
    click.echo(f'keys = ["{key.public.text}"]')


@repo.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--key", "key", required=True, type=click.Path(dir_okay=False),
              help="The private signing key (kbuild repo keygen); its path is remembered for later writes.")
@click.option("--channels", default="dev,prod", show_default=True,
              help="Comma-separated channels, least stable first.")
@click.option("--valid-for", default="30d", show_default=True,
              help="How long each signed index stays valid (e.g. 7d, 12h); refresh before it ends.")
def init(directory: str, key: str, channels: str, valid_for: str) -> None:
    """Create an empty signed repository in DIRECTORY."""
    from kbuilder.repository import store

    names = tuple(c.strip() for c in channels.split(",") if c.strip())
    index = store.init(directory, key, channels=names, valid_for=_duration(valid_for) or store.DEFAULT_VALID_FOR)
    click.echo(f"initialised {directory}: channels {', '.join(index.channels)}; index version {index.version}, "
               f"expires {index.expires}")


@repo.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("module", type=click.Path(dir_okay=False))
@click.argument("metadata", required=False, type=click.Path(dir_okay=False))
@click.option("--channel", required=True, help="The channel to publish in (usually the least stable).")
@click.option("--key", "key", type=click.Path(dir_okay=False), help="The signing key (default: the one of init).")
def add(directory: str, module: str, metadata: str | None, channel: str, key: str | None) -> None:
    """Publish MODULE (.ko, with its METADATA .json when given) in a channel."""
    from kbuilder.repository import store

    artifact = store.add(directory, module, metadata, channel=channel, key_path=key)
    level = f"{artifact.kind} {artifact.level}" if artifact.level is not None else artifact.kind
    click.echo(f"added {artifact.label}: {level}, severity {(artifact.max_severity or 'none').lower()}, channel "
               f"{artifact.channel}, sha256 {artifact.sha256[:16]}")


@repo.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("name")
@click.option("--from", "source", required=True, help="The channel the artifact is in now.")
@click.option("--to", "destination", required=True, help="The next, more stable channel.")
@click.option("--build-id", help="Only the artifacts for the kernel whose build id starts with this.")
@click.option("--key", "key", type=click.Path(dir_okay=False), help="The signing key (default: the one of init).")
def promote(directory: str, name: str, source: str, destination: str, build_id: str | None, key: str | None) -> None:
    """Move artifact NAME (file or module name, or sha256 prefix) to the next channel."""
    from kbuilder.repository import store

    for artifact in store.promote(directory, name, source=source, destination=destination, key_path=key,
                                  build_id=build_id):
        click.echo(f"promoted {artifact.label}: {source} -> {destination}")


@repo.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--valid-for", help="New validity (default: the repository's).")
@click.option("--key", "key", type=click.Path(dir_okay=False), help="The signing key (default: the one of init).")
def refresh(directory: str, valid_for: str | None, key: str | None) -> None:
    """Re-sign the index with a new version and expiry (run it from a timer)."""
    from kbuilder.repository import store

    index = store.refresh(directory, key_path=key, valid_for=_duration(valid_for))
    click.echo(f"index version {index.version}, expires {index.expires}")


@repo.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--key", "keys", multiple=True,
              help="A pinned public key (ed25519:... or a .pub file; repeatable). Default: the repository's keys/.")
def verify(directory: str, keys: tuple[str, ...]) -> None:
    """Check every signature, hash and size, and the metadata of every artifact."""
    from kbuilder.repository import store
    from kbuilder.repository.keys import load_public

    pinned = [load_public(k) for k in keys] if keys else None
    report = store.verify(directory, pinned=pinned)
    for problem in report.problems:
        click.echo(problem)
    for note in report.notes:
        click.echo(f"note: {note}")
    index = report.index
    if report.problems:
        raise InputError(f"{len(report.problems)} problem(s) in {len(index.artifacts)} artifact(s) of index "
                         f"version {index.version}", path=directory)
    click.echo(f"ok: index version {index.version} signed by {report.key.keyid}, expires {index.expires}; "
               f"{len(index.artifacts)} artifact(s), {report.checked_files} file(s) checked")


@repo.command(name="list")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--channel", help="Only what an agent on this channel sees.")
@click.option("--json", "as_json", is_flag=True, help="Print the index as JSON.")
def list_(directory: str, channel: str | None, as_json: bool) -> None:
    """List the artifacts of a repository (after verifying its signature)."""
    from kbuilder.repository import store

    report = store.verify(directory)
    index = report.index
    artifacts = [a for a in index.artifacts if channel is None or index.visible(a, channel)]
    if as_json:
        click.echo(json.dumps({**index.to_json(), "artifacts": [a.to_json() for a in artifacts]}, indent=2,
                              sort_keys=True))
        return
    click.echo(f"index version {index.version}, expires {index.expires}, channels {' < '.join(index.channels)}")
    for a in artifacts:
        level = f"{a.kind} {a.level}" if a.level is not None else a.kind
        click.echo(f"  {a.name:<32} {a.target['kernel_release']} {a.target['vmlinux_build_id'][:12]} "
                   f"{a.target['arch']:<8} {level:<14} {(a.max_severity or 'none').lower():<8} {a.channel}")


@repo.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--bind", default="127.0.0.1:8080", show_default=True,
              help="Loopback HOST:PORT to listen on (PORT 0 picks a free one).")
@click.option("--log", "log", is_flag=True, help="Log each request to stderr.")
def serve(directory: str, bind: str, log: bool) -> None:
    """Serve DIRECTORY over HTTP on loopback (a convenience; use nginx in production)."""
    import signal

    from kbuilder.repository.serve import make_server, parse_bind

    host, port = parse_bind(bind)
    server = make_server(directory, host, port, quiet=not log)
    actual = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"serving {directory} at http://{shown}:{actual}/ (Ctrl-C stops)")

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
