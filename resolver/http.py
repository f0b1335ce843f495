"""HTTP to GitHub: headers, token rules, redirects, retries with backoff, rate limits, ETags.

Rules kept here so no caller can get them wrong:
- the token goes only to the API's own origin (scheme, host, port), hop by hop across redirects;
- a token with a plain ``http://`` API URL on a non-loopback host is refused before any request;
- 5xx answers and transport failures are tried 3 times in all, with backoff;
- a spent rate limit is waited out when it resets within 60 s, otherwise it is an error saying
  when it resets; 401, 404 and other 4xx answers are not retried;
- a 304 to a conditional request spends no quota and is counted apart;
- a host that cannot be reached is named with the cause (DNS, refused, timeout, TLS) and the
  ways to work without GitHub (``--offline``, ``--bundle``, ``--git-dir``);
- an API URL on a GitHub Enterprise Server host that lacks ``/api/v3`` is recognised from the
  answers (an HTML page, or a 404 where ``/api/v3`` answers) and the right URL suggested.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from resolver.errors import (
    BadInputError,
    HTTPStatusError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ResolverError,
)
from resolver.settings import DEFAULT_API_URL as GITHUB_API

API_VERSION = "2022-11-28"
TRIES = 3
MAX_RATE_LIMIT_WAIT = 60.0
MAX_RATE_LIMIT_WAITS = 2
MAX_REDIRECTS = 5
POOL_SIZE = 32

Sleep = Callable[[float], None]
Clock = Callable[[], float]
Origin = tuple[str, str, int]


def _tool_version() -> str:
    try:
        return metadata.version("hatchet-schema")
    except metadata.PackageNotFoundError:
        return "0.0.0"


USER_AGENT = f"hatchet-schema/{_tool_version()}"


def _origin(url: httpx.URL) -> Origin:
    default = 443 if url.scheme == "https" else 80
    return (url.scheme, url.host.lower(), url.port or default)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (``127.0.0.0/8``, ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def suggested_api_url(api_url: str) -> str | None:
    """The API URL a mistaken ``api_url`` probably meant, None when it looks right:
    https://api.github.com for github.com, ``https://api.NAME.ghe.com`` for a GHE.com web host,
    else ``https://HOST/api/v3`` (GitHub Enterprise Server) for a path that is not ``/api/v3``."""
    parts = urlsplit(api_url)
    host = (parts.hostname or "").lower()
    if host in ("github.com", "www.github.com"):
        return GITHUB_API
    if host == "api.github.com" or parts.path.rstrip("/").lower().endswith("/api/v3"):
        return None
    if host.endswith(".ghe.com"):  # GitHub Enterprise Cloud with data residency: no /api/v3
        return None if host.startswith("api.") else f"https://api.{host}"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/api/v3"


@dataclass(frozen=True)
class Endpoints:
    """Where the REST API, raw file downloads and GraphQL live for one ``--api-url``."""

    api: str
    raw: str
    graphql: str

    @classmethod
    def from_api_url(cls, api_url: str, *, has_token: bool) -> Endpoints:
        """Check ``api_url`` and derive the other two; bad URLs are :class:`BadInputError`."""
        text = api_url.strip().rstrip("/")
        try:
            parts = urlsplit(text)
        except ValueError:  # an unclosed IPv6 bracket, a malformed netloc
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInputError(
                "the GitHub API URL must look like https://api.github.com or "
                "https://HOST/api/v3 (GitHub Enterprise)"
            )
        if parts.username is not None or parts.password is not None:
            raise BadInputError("the GitHub API URL must not hold credentials; use GH_TOKEN")
        if parts.query or parts.fragment:
            raise BadInputError("the GitHub API URL must not have a query string or fragment")
        if has_token and parts.scheme == "http" and not is_loopback(parts.hostname):
            raise BadInputError(
                f"refusing to send the GitHub token over plain http to {parts.hostname}; "
                "use an https:// API URL"
            )
        try:
            port = parts.port
        except ValueError as exc:
            raise BadInputError("the GitHub API URL has an invalid port") from exc
        try:
            httpx.URL(text)
        except (httpx.InvalidURL, ValueError) as exc:  # ValueError: an IDNA host name
            raise BadInputError(f"the GitHub API URL is malformed: {exc}") from None
        if text == GITHUB_API:
            return cls(GITHUB_API, "https://raw.githubusercontent.com", f"{GITHUB_API}/graphql")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        origin = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
        return cls(text, f"{origin}/raw", f"{origin}/api/graphql")


@dataclass
class RequestStats:
    """What was sent: ``core`` counts REST answers that spend quota (a 304 does not)."""

    core: int = 0
    not_modified: int = 0
    raw: int = 0
    graphql: int = 0

    @property
    def total(self) -> int:
        return self.core + self.not_modified + self.raw + self.graphql


@dataclass(frozen=True)
class Reply:
    """A successful answer (2xx or a 304 to a conditional request)."""

    status: int
    url: str
    headers: Mapping[str, str]
    content: bytes
    api_url_hint: str | None = None
    """The API URL to suggest when this answer shows the configured one is not an API."""

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    def json(self) -> Any:
        """The body as JSON; an HTML page or malformed JSON is a :class:`NetworkError` (an HTML
        page where a better API URL is known: :class:`BadInputError` suggesting it)."""
        where = _describe(self.url)
        if _is_html(self.headers, self.content):
            if self.api_url_hint:
                raise BadInputError(
                    f"{where} answered with an HTML page, not GitHub's API: {self.api_url_hint}"
                )
            raise NetworkError(
                f"GitHub answered {where} with an HTML page instead of JSON; check the API URL "
                "(GitHub Enterprise: https://HOST/api/v3)"
            )
        try:
            return json.loads(self.content)
        except ValueError as exc:
            raise NetworkError(f"GitHub answered {where} with malformed JSON") from exc


def _describe(url: str) -> str:
    # Host, port and path only: never the query string or any user info.
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname}{port}{parts.path}"


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _is_html(headers: Mapping[str, str], content: bytes) -> bool:
    kind = headers.get("content-type", "").lower()
    return "html" in kind or content.lstrip()[:1] == b"<"


WITHOUT_GITHUB = (
    "or work without GitHub: --offline (only what the cache holds), --bundle FILE (made with "
    "`hatchet-schema bundle` on a connected machine) or --git-dir DIR (a local clone)"
)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it (httpx wraps httpcore, which wraps the socket or ssl error)."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


@dataclass(frozen=True)
class Unreachable:
    """Why a host could not be reached, in words, and whether trying again may help."""

    cause: str
    hint: str
    transient: bool = True


def unreachable(exc: httpx.TransportError, url: str, timeouts: httpx.Timeout) -> Unreachable:
    """Name the cause of a transport failure on ``url`` from the exception chain: the socket's
    ``gaierror`` / errno, the ssl error, or httpx's timeout kind."""
    host, where = urlsplit(url).hostname or "?", _host_port(url)
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or cause.reason or "certificate verify failed"
            return Unreachable(
                f"TLS: the certificate of {host} was not accepted ({detail})",
                "a server with a private certificate authority needs SSL_CERT_FILE set to its "
                "CA bundle; check the --api-url host name",
                transient=False,
            )
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or str(cause)
            plain = " (is it a plain http:// server?)" if "WRONG_VERSION" in str(reason) else ""
            return Unreachable(
                f"TLS: the handshake with {where} failed ({reason}){plain}",
                "check the --api-url scheme and port",
                transient=False,
            )
        if isinstance(cause, socket.gaierror):
            return Unreachable(
                f"DNS: the name {host} could not be resolved ({cause.strerror or cause})",
                "check the --api-url host name and this machine's DNS",
            )
        if isinstance(cause, ConnectionRefusedError):
            return Unreachable(
                f"connection refused: nothing listens on {where}",
                "check the --api-url host and port",
            )
        if isinstance(cause, ConnectionResetError):
            return Unreachable(
                f"connection reset by {where}", "a proxy or firewall may be in the way"
            )
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return Unreachable(
                f"network unreachable: no route to {where} ({cause.strerror})",
                "this machine may have no network access to GitHub (an HTTPS_PROXY?)",
            )
    if isinstance(exc, httpx.ConnectTimeout):
        return Unreachable(
            f"timeout: connecting to {where} timed out after {timeouts.connect or 0:g} s",
            "a firewall may drop the packets, or an HTTPS_PROXY is needed",
        )
    if isinstance(exc, httpx.TimeoutException):
        return Unreachable(
            f"timeout: {where} timed out, no answer within {timeouts.read or 0:g} s",
            "try again later",
        )
    if isinstance(exc, httpx.ProxyError):
        return Unreachable(f"the proxy refused the request ({exc})", "check HTTPS_PROXY")
    return Unreachable(f"{type(exc).__name__}: {exc}", "check the network and --api-url")


def _error_message(response: httpx.Response) -> str:
    """GitHub's ``message`` from a basic-error body, else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:200]
    return response.reason_phrase or "error"


class GitHubHTTP:
    """One httpx client, shared by threads, speaking to one API base (plus its raw/GraphQL)."""

    def __init__(
        self,
        api_url: str,
        token: str | None,
        *,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoints = Endpoints.from_api_url(api_url, has_token=bool(token))
        if token and not all("!" <= c <= "~" for c in token):  # visible ASCII, as in a header
            raise BadInputError(
                "the GitHub token (--token, GH_TOKEN or GITHUB_TOKEN) holds a character no "
                "token has (a space, a line break, a non-ASCII letter): check how it was set"
            )
        self._token = token or None
        self._api_origin = _origin(httpx.URL(self.endpoints.api))
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self.stats = RequestStats()
        self._suggested_api = suggested_api_url(self.endpoints.api)
        self._api_probed = False
        self._wrong_api: str | None = None  # once known, every API call fails with it
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )

    def __repr__(self) -> str:
        token = "set" if self._token else "none"
        return f"GitHubHTTP(api={self.endpoints.api!r}, token={token})"

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def close(self) -> None:
        self._client.close()

    # -- public calls -------------------------------------------------------------------------

    def api_get(self, path: str, *, etag: str | None = None, accept: str | None = None) -> Reply:
        """GET a REST path (relative to the API base) or an absolute API URL.

        With ``etag`` the request is conditional and a 304 comes back as a :class:`Reply`.
        404 raises :class:`NotFoundError`; other failures :class:`NetworkError`.
        """
        if self._wrong_api:
            raise BadInputError(self._wrong_api)
        url = path if "://" in path else f"{self.endpoints.api}{path}"
        headers = {
            "Accept": accept or "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        if etag:
            headers["If-None-Match"] = etag
        response = self._send("GET", url, headers)
        self._count("not_modified" if response.status_code == 304 else "core")
        hint = self._api_url_hint()
        if response.status_code == 304 and etag:
            return self._reply(response, hint)
        if response.status_code == 404 and hint:
            self._check_api_url(url, response, hint)
        self._raise_for_status(response)
        return self._reply(response, hint)

    def raw_get(self, url: str) -> bytes | None:
        """Download a raw file; ``None`` when the server has no such file (404)."""
        response = self._send("GET", url, {"Accept": "*/*"})
        self._count("raw")
        if response.status_code == 404:
            return None
        self._raise_for_status(response)
        return response.content

    def graphql(self, query: str) -> Any:
        """POST a GraphQL query (needs the token); returns the decoded JSON document."""
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        body = json.dumps({"query": query}).encode()
        response = self._send("POST", self.endpoints.graphql, headers, body)
        self._count("graphql")
        self._raise_for_status(response)
        return self._reply(response).json()

    # -- internals ----------------------------------------------------------------------------

    def _count(self, field: str) -> None:
        with self._lock:
            setattr(self.stats, field, getattr(self.stats, field) + 1)

    @staticmethod
    def _reply(response: httpx.Response, api_url_hint: str | None = None) -> Reply:
        return Reply(
            response.status_code,
            str(response.url),
            dict(response.headers),
            response.content,
            api_url_hint,
        )

    def _api_url_hint(self) -> str | None:
        if self._suggested_api is None:
            return None
        ghes = (
            " (GitHub Enterprise Server serves its REST API under https://HOST/api/v3)"
            if self._suggested_api.endswith("/api/v3")
            else ""
        )
        return (
            f"--api-url {self.endpoints.api} is not GitHub's API; did you mean "
            f"{self._suggested_api}?{ghes}"
        )

    def _check_api_url(self, url: str, response: httpx.Response, hint: str) -> None:
        """After a 404 on ``url``: raise :class:`BadInputError` with ``hint`` when the answer
        shows the API URL lacks its path (an HTML page, or the same request under the suggested
        URL succeeds: probed once per client, so a real 404 costs one extra request at most)."""
        if not url.startswith(self.endpoints.api + "/") or self._suggested_api is None:
            return
        if _is_html(response.headers, response.content):
            why = "answered 404 with an HTML page"
        else:
            with self._lock:
                probed, self._api_probed = self._api_probed, True
            if probed:
                return
            probe_url = self._suggested_api + url[len(self.endpoints.api) :]
            headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
            try:
                probe = self._send("GET", probe_url, headers)
            except ResolverError:
                return
            self._count("core")
            if not 200 <= probe.status_code < 300:
                return
            why = f"answered 404, {_describe(probe_url)} answered {probe.status_code}"
        self._wrong_api = f"{_describe(url)} {why}: {hint}"
        raise BadInputError(self._wrong_api)

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None = None
    ) -> httpx.Response:
        """Send with retries (5xx, transport errors) and rate-limit waits."""
        attempt = 0
        waits = 0
        while True:
            attempt += 1
            try:
                response = self._follow(method, url, headers, body)
            except httpx.TransportError as exc:
                why = unreachable(exc, url, self._client.timeout)
                if why.transient and attempt < TRIES:
                    self._sleep(self._backoff(attempt))
                    continue
                tries = f", {attempt} tries" if attempt > 1 else ""
                message = (
                    f"could not reach {_describe(url)}: {why.cause}{tries}; {why.hint}, "
                    f"{WITHOUT_GITHUB}"
                )
                if self._token:  # an exception text may quote a header
                    message = message.replace(self._token, "***")
                raise NetworkError(message) from None
            if response.status_code >= 500:
                if attempt < TRIES:
                    self._sleep(self._backoff(attempt))
                    continue
                raise NetworkError(
                    f"GitHub answered {response.status_code} {response.reason_phrase} for "
                    f"{_describe(url)} {TRIES} times; try again later"
                )
            if self._is_rate_limited(response):
                wait = self._rate_limit_wait(response)
                if (
                    wait is not None
                    and wait <= MAX_RATE_LIMIT_WAIT
                    and waits < MAX_RATE_LIMIT_WAITS
                ):
                    waits += 1
                    attempt -= 1
                    self._sleep(max(wait, 0.0) + 1.0)
                    continue
                raise RateLimitedError(self._rate_limit_message(response, wait))
            return response

    def _follow(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> httpx.Response:
        """One request, following redirects by hand so the token never leaves the API origin."""
        target = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            hop_headers = dict(headers)
            if self._token and _origin(target) == self._api_origin:
                hop_headers["Authorization"] = f"Bearer {self._token}"
            response = self._client.request(method, target, headers=hop_headers, content=body)
            location = response.headers.get("location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                return response
            target = httpx.URL(urljoin(str(target), location))
            if target.scheme not in ("http", "https"):
                raise NetworkError(f"{_describe(url)} redirected to an unsupported URL")
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method != "GET"
            ):
                method, body = "GET", None
        raise NetworkError(f"too many redirects from {_describe(url)}")

    @staticmethod
    def _backoff(attempt: int) -> float:
        return 0.5 * float(2 ** (attempt - 1))

    @staticmethod
    def _is_rate_limited(response: httpx.Response) -> bool:
        if response.status_code not in (403, 429):
            return False
        headers = response.headers
        return headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        """Seconds until the limit lifts, from ``retry-after`` or ``x-ratelimit-reset``."""
        retry_after = response.headers.get("retry-after")
        if retry_after is not None:
            try:
                return float(int(retry_after.strip()))
            except ValueError:
                pass
        reset = response.headers.get("x-ratelimit-reset")
        if reset is not None:
            try:
                return float(int(reset.strip())) - self._clock()
            except ValueError:
                return None
        return None

    def _rate_limit_message(self, response: httpx.Response, wait: float | None) -> str:
        who = "for this token" if self._token else "for anonymous requests"
        message = f"GitHub API rate limit exceeded {who}"
        if wait is not None:
            at = dt.datetime.fromtimestamp(self._clock() + max(wait, 0.0), tz=dt.UTC)
            minutes = max(1, round(wait / 60))
            message += f"; it resets at {at:%Y-%m-%d %H:%M:%S} UTC (in about {minutes} min)"
        if not self._token:
            message += (
                "; set GH_TOKEN (or pass --token) to raise the limit from 60 to 5,000 "
                "requests an hour"
            )
        return message

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        where = _describe(str(response.request.url))
        message = _error_message(response)
        if status == 404:
            raise NotFoundError(f"GitHub has no {where} (404 {message})")
        if status == 401:
            hint = "check GH_TOKEN / --token" if self._token else "a token may be needed"
            raise HTTPStatusError(
                f"GitHub refused the request to {where} (401 {message}); {hint}", status
            )
        if status == 403:
            raise HTTPStatusError(f"GitHub refused the request to {where} (403 {message})", status)
        raise HTTPStatusError(f"GitHub answered {status} for {where}: {message}", status)
