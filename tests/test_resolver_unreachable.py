"""When GitHub cannot be reached, or ``--api-url`` is not GitHub's API: the message names why.

Real sockets where they are cheap (a refused port, a TLS handshake with a plain HTTP server, a
server with a self-signed certificate, one that never answers); respx for what a test machine
cannot produce on demand (a DNS failure, a connect timeout).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import respx
from typer.testing import CliRunner

from cli import app
from fixtures.github_emulator import Emulator
from resolver.errors import BadInputError, NetworkError, NotFoundError
from resolver.http import GitHubHTTP, suggested_api_url
from tests.e2e_helpers import no_real_sleeps

TOKEN = "ghp_SECRETtoken1234567890"


def client(api: str, *, timeout: float = 5.0, token: str | None = None) -> GitHubHTTP:
    return GitHubHTTP(api, token, sleep=lambda _s: None, timeout=timeout)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def tcp_server(reply: bytes | None, wrap: ssl.SSLContext | None = None) -> Iterator[int]:
    """A loopback server that answers each connection with ``reply`` (None: never answers)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)  # so the loop sees ``stop`` promptly
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(2.0)
            held.append(conn)
            try:
                if wrap is not None:
                    conn = wrap.wrap_socket(conn, server_side=True)
                    held.append(conn)
                conn.recv(65536)
                if reply is not None:
                    conn.sendall(reply)
            except (OSError, ssl.SSLError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for conn in held:
            conn.close()


PLAIN_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


def _offline_ways(message: str) -> None:
    assert "--offline" in message and "--bundle FILE" in message and "--git-dir DIR" in message


# -- the cause, named ----------------------------------------------------------------------------


def test_refused_names_the_host_and_port_and_the_offline_ways() -> None:
    port = _closed_port()
    with pytest.raises(NetworkError) as err:
        client(f"http://127.0.0.1:{port}/api/v3").api_get("/repos/o/r/tags")
    message = str(err.value)
    assert f"connection refused: nothing listens on 127.0.0.1:{port}" in message
    assert "3 tries" in message
    _offline_ways(message)


def test_tls_with_a_plain_http_server_is_named_and_not_retried() -> None:
    with tcp_server(PLAIN_OK) as port:
        http = client(f"https://127.0.0.1:{port}/api/v3")
        with pytest.raises(NetworkError) as err:
            http.api_get("/repos/o/r/tags")
    message = str(err.value)
    assert message.startswith(f"could not reach 127.0.0.1:{port}/api/v3/repos/o/r/tags: TLS:")
    assert "is it a plain http:// server?" in message
    assert "tries" not in message  # a handshake that failed once fails again
    _offline_ways(message)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_an_untrusted_certificate_is_named_with_the_way_to_trust_it(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    subprocess.run(
        [*make.split(), "-subj", "/CN=localhost", "-days", "1", "-keyout", key, "-out", cert],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with tcp_server(PLAIN_OK, wrap=context) as port, pytest.raises(NetworkError) as err:
        client(f"https://localhost:{port}/api/v3").api_get("/repos/o/r/tags")
    message = str(err.value)
    assert "TLS: the certificate of localhost was not accepted (self-signed certificate" in (
        message
    )
    assert "SSL_CERT_FILE" in message


def test_a_server_that_never_answers_is_a_timeout() -> None:
    with tcp_server(None) as port, pytest.raises(NetworkError) as err:
        client(f"http://127.0.0.1:{port}/api/v3", timeout=0.1).api_get("/repos/o/r/tags")
    message = str(err.value)
    assert f"timeout: 127.0.0.1:{port} timed out, no answer within 0.1 s, 3 tries" in message
    _offline_ways(message)


def test_a_dns_failure_is_named() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        # As httpx raises it: a ConnectError caused by the resolver's gaierror (respx would
        # replace the cause with its own, so a plain mock transport).
        cause = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        raise httpx.ConnectError(str(cause), request=request) from cause

    http = GitHubHTTP(
        "https://ghe.corp.example/api/v3",
        None,
        sleep=lambda _s: None,
        transport=httpx.MockTransport(fail),
    )
    with pytest.raises(NetworkError) as err:
        http.api_get("/repos/o/r/tags")
    message = str(err.value)
    assert "DNS: the name ghe.corp.example could not be resolved (Name or service not known)" in (
        message
    )
    _offline_ways(message)


@respx.mock
def test_a_connect_timeout_is_named_with_the_connect_limit() -> None:
    respx.get("https://api.github.com/x").mock(side_effect=httpx.ConnectTimeout("timed out"))
    with pytest.raises(NetworkError) as err:
        client("https://api.github.com", timeout=30).api_get("/x")
    assert "timeout: connecting to api.github.com:443 timed out after 10 s, 3 tries" in str(
        err.value
    )


@respx.mock
def test_the_token_never_appears_in_a_transport_error() -> None:
    respx.get("https://api.github.com/x").mock(
        side_effect=httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}\\n'")
    )
    with pytest.raises(NetworkError) as err:
        client("https://api.github.com", token=TOKEN).api_get("/x")
    assert TOKEN not in str(err.value)


def test_the_cli_says_it_in_one_line_with_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = no_real_sleeps(monkeypatch)
    port = _closed_port()
    result = CliRunner().invoke(
        app,
        ["resolve", "v0.60.0", "--api-url", f"http://127.0.0.1:{port}/api/v3"],
        env={"HATCHET_SCHEMA_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not reach 127.0.0.1:")
    assert "connection refused" in lines[0] and "--offline" in lines[0]
    assert len(sleeps) == 2  # tried 3 times, with a backoff between tries


# -- an --api-url that is not the API ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("https://ghe.corp.example", "https://ghe.corp.example/api/v3"),
        ("https://ghe.corp.example:8443/github", "https://ghe.corp.example:8443/api/v3"),
        ("https://github.com", "https://api.github.com"),
        ("https://octo.ghe.com", "https://api.octo.ghe.com"),
        ("https://api.github.com", None),
        ("https://ghe.corp.example/api/v3", None),
        ("https://api.octo.ghe.com", None),
    ],
)
def test_suggested_api_url(given: str, meant: str | None) -> None:
    assert suggested_api_url(given) == meant


@respx.mock
def test_a_ghes_web_404_page_suggests_api_v3() -> None:
    respx.get("https://ghe.corp.example/repos/o/r/tags").respond(
        404, html="<!DOCTYPE html><html><title>Page not found</title></html>"
    )
    with pytest.raises(BadInputError) as err:
        client("https://ghe.corp.example").api_get("/repos/o/r/tags")
    message = str(err.value)
    assert "did you mean https://ghe.corp.example/api/v3?" in message
    assert "--api-url https://ghe.corp.example is not GitHub's API" in message


@respx.mock
def test_a_ghes_login_page_suggests_api_v3() -> None:
    respx.get("https://ghe.corp.example/repos/o/r/tags").respond(
        200, html="<html><body>Sign in to GitHub Enterprise</body></html>"
    )
    reply = client("https://ghe.corp.example").api_get("/repos/o/r/tags")
    with pytest.raises(BadInputError, match=r"did you mean https://ghe\.corp\.example/api/v3\?"):
        reply.json()


@respx.mock
def test_a_json_404_is_probed_once_under_api_v3_and_then_named_every_time() -> None:
    wrong = respx.get("https://ghe.corp.example/repos/o/r/tags").respond(
        404, json={"message": "Not Found"}
    )
    right = respx.get("https://ghe.corp.example/api/v3/repos/o/r/tags").respond(json=[])
    http = client("https://ghe.corp.example")
    for _ in range(2):
        with pytest.raises(BadInputError, match=r"did you mean https://ghe\.corp\.example/api/v3"):
            http.api_get("/repos/o/r/tags")
    assert wrong.call_count == 1 and right.call_count == 1  # the verdict is remembered


@respx.mock
def test_a_real_404_on_an_unusual_base_costs_one_probe_and_stays_a_404() -> None:
    respx.get("https://proxy.example/gh/repos/o/r/git/ref/tags/v9").respond(
        404, json={"message": "Not Found"}
    )
    respx.get("https://proxy.example/gh/repos/o/r/git/ref/tags/v8").respond(
        404, json={"message": "Not Found"}
    )
    probe = respx.get(url__startswith="https://proxy.example/api/v3/").respond(404)
    http = client("https://proxy.example/gh")
    for tag in ("v9", "v8"):
        with pytest.raises(NotFoundError):
            http.api_get(f"/repos/o/r/git/ref/tags/{tag}")
    assert probe.call_count == 1


@respx.mock
def test_no_probe_where_the_api_url_looks_right() -> None:
    respx.get("https://ghe.corp.example/api/v3/repos/o/r/tags").respond(
        404, html="<html>not found</html>"
    )
    with pytest.raises(NotFoundError):
        client("https://ghe.corp.example/api/v3").api_get("/repos/o/r/tags")
    assert respx.calls.call_count == 1


def test_the_cli_names_the_missing_api_v3_against_the_emulator(tmp_path: Path) -> None:
    """The emulator serves the API under /api/v3, as GitHub Enterprise Server does, and answers
    GitHub's JSON 404 elsewhere: the probe is what tells the two apart."""
    with Emulator() as gh:
        right = gh.api_url
        result = CliRunner().invoke(
            app,
            ["resolve", "v0.60.0", "--api-url", right.removesuffix("/api/v3")],
            env={"HATCHET_SCHEMA_CACHE_DIR": str(tmp_path / "cache")},
        )
    assert result.exit_code == 2, result.output
    assert f"did you mean {right}?" in result.stderr
    assert "Traceback" not in result.stderr
