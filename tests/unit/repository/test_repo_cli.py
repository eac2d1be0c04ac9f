"""`kbuild repo ...` on the command line: output and one-line refusals."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from repo_helpers import cli_main, kbuild_argv, make_module


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_main(), list(args))


def one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_whole_cycle(tmp_path: Path) -> None:
    key = tmp_path / "repo.key"
    result = run("repo", "keygen", "--out", str(key))
    assert result.exit_code == 0, result.output
    pub = (tmp_path / "repo.key.pub").read_text().strip()
    assert f'keys = ["{pub}"]' in result.output
    assert "already exists" in one_line_error(run("repo", "keygen", "--out", str(key)))
    root = tmp_path / "repo"
    result = run("repo", "init", str(root), "--key", str(key), "--channels", "dev,test,prod", "--valid-for", "7d")
    assert result.exit_code == 0 and "channels dev, test, prod; index version 1" in result.output
    ko, doc, _ = make_module(tmp_path / "build", "livepatch-demo-1")
    result = run("repo", "add", str(root), str(ko), str(doc), "--channel", "dev")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("added livepatch-demo-1 (6.1.0-test build 8d3f2a9c1b7e): cumulative 1, "
                                    "severity high, channel dev")
    error = one_line_error(run("repo", "promote", str(root), "livepatch-demo-1", "--from", "dev", "--to", "prod"))
    assert error == "kbuild: error: promotion refused: dev -> prod would skip test: promote one channel at a time"
    result = run("repo", "promote", str(root), "livepatch-demo-1", "--from", "dev", "--to", "test")
    assert result.output == "promoted livepatch-demo-1 (6.1.0-test build 8d3f2a9c1b7e): dev -> test\n"
    result = run("repo", "verify", str(root))
    assert result.exit_code == 0 and result.output.startswith("ok: index version 3 signed by ")
    assert "1 artifact(s), 2 file(s) checked" in result.output
    result = run("repo", "verify", str(root), "--key", pub)
    assert result.exit_code == 0
    other = tmp_path / "other.key"
    run("repo", "keygen", "--out", str(other))
    error = one_line_error(run("repo", "verify", str(root), "--key", str(tmp_path / "other.key.pub")))
    assert error.startswith("kbuild: error: unknown key: file://") and "which is not pinned" in error
    result = run("repo", "list", str(root), "--channel", "test")
    assert "livepatch-demo-1" in result.output and "cumulative 1" in result.output
    assert "livepatch-demo-1" not in run("repo", "list", str(root), "--channel", "prod").output
    data = json.loads(run("repo", "list", str(root), "--json").output)
    assert data["version"] == 3 and data["artifacts"][0]["channel"] == "test"
    result = run("repo", "refresh", str(root), "--valid-for", "1d")
    assert result.exit_code == 0 and result.output.startswith("index version 4, expires ")
    # a damaged artifact: one line per problem, then one error line
    stored = next(root.glob("artifacts/*/*.ko"))
    stored.write_bytes(stored.read_bytes()[:-1] + b"X")
    result = run("repo", "verify", str(root))
    assert result.output.startswith("hash mismatch: file://")
    assert one_line_error(result).endswith("1 problem(s) in 1 artifact(s) of index version 4")


def test_usage_errors(tmp_path: Path) -> None:
    assert "not a repository" in one_line_error(run("repo", "verify", str(tmp_path)))
    result = run("repo", "init", str(tmp_path / "r"), "--key", str(tmp_path / "none.key"))
    assert one_line_error(result).endswith("signing key not found")
    result = run("repo", "serve", str(tmp_path), "--bind", "0.0.0.0:8080")
    assert "repo serve listens on loopback only" in one_line_error(result)
    result = run("repo", "init", str(tmp_path / "r"), "--key", "k", "--valid-for", "soon")
    assert result.exit_code == 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_only_the_format_files(tmp_path: Path) -> None:
    key = tmp_path / "repo.key"
    run("repo", "keygen", "--out", str(key))
    root = tmp_path / "repo"
    run("repo", "init", str(root), "--key", str(key))
    proc = subprocess.Popen(kbuild_argv("repo", "serve", str(root), "--bind", "127.0.0.1:0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"serving {root} at http://127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "index.json", timeout=5) as response:
            assert response.read() == (root / "index.json").read_bytes()
            assert response.headers["Cache-Control"] == "no-cache"
        for path in (".kbuilder/config.json", "", "artifacts/", "keys/../.kbuilder/config.json", "nothing"):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(url + path, timeout=5)
            assert info.value.code == 404, path
        request = urllib.request.Request(url + "index.json", data=b"x", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code in (405, 501)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
    # a port in use is one line
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        result = run("repo", "serve", str(root), "--bind", f"127.0.0.1:{port}")
        assert "cannot listen on 127.0.0.1" in one_line_error(result)
        assert time.monotonic() - started < 5
