"""The GitHub HTTP client: headers, token safety, redirects, retries, rate limits, bad bodies."""

from __future__ import annotations

import httpx
import pytest
import respx

from cli import exit_code_of
from resolver.errors import BadInputError, HTTPStatusError, NetworkError, RateLimitedError
from resolver.http import USER_AGENT, Endpoints, GitHubHTTP
from tests.test_resolver_fakegithub import basic_error

API = "https://api.github.com"
TOKEN = "ghp_SECRETtoken1234567890"
NOW = 1_800_000_000.0


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(token: str | None = None, api: str = API) -> tuple[GitHubHTTP, Sleeps]:
    sleeps = Sleeps()
    return GitHubHTTP(api, token, sleep=sleeps, clock=lambda: NOW), sleeps


@respx.mock
def test_api_requests_carry_githubs_headers_and_the_bearer_token() -> None:
    route = respx.get(f"{API}/rate_limit").respond(json={})
    http, _ = client(TOKEN)
    http.api_get("/rate_limit")
    sent = route.calls.last.request.headers
    assert sent["accept"] == "application/vnd.github+json"
    assert sent["x-github-api-version"] == "2022-11-28"
    assert sent["user-agent"] == USER_AGENT and USER_AGENT.startswith("hatchet-schema/")
    assert sent["authorization"] == f"Bearer {TOKEN}"


@respx.mock
def test_anonymous_requests_send_no_authorization() -> None:
    route = respx.get(f"{API}/rate_limit").respond(json={})
    client()[0].api_get("/rate_limit")
    assert "authorization" not in route.calls.last.request.headers


@respx.mock
def test_token_is_not_sent_to_the_raw_host() -> None:
    route = respx.get("https://raw.githubusercontent.com/o/r/x").respond(content=b"data")
    assert client(TOKEN)[0].raw_get("https://raw.githubusercontent.com/o/r/x") == b"data"
    assert "authorization" not in route.calls.last.request.headers


@respx.mock
def test_token_does_not_follow_a_redirect_to_another_host() -> None:
    respx.get(f"{API}/repos/o/r/tags").respond(301, headers={"location": "https://evil.test/t"})
    other = respx.get("https://evil.test/t").respond(json=[])
    client(TOKEN)[0].api_get("/repos/o/r/tags")
    assert "authorization" not in other.calls.last.request.headers


@respx.mock
def test_token_follows_a_redirect_on_the_api_host() -> None:
    respx.get(f"{API}/repos/o/old").respond(301, headers={"location": f"{API}/repositories/1"})
    moved = respx.get(f"{API}/repositories/1").respond(json={})
    client(TOKEN)[0].api_get("/repos/o/old")
    assert moved.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"


@respx.mock
def test_token_does_not_follow_a_downgrade_to_http_on_the_same_host() -> None:
    respx.get(f"{API}/a").respond(302, headers={"location": "http://api.github.com/b"})
    plain = respx.get("http://api.github.com/b").respond(json={})
    client(TOKEN)[0].api_get("/a")
    assert "authorization" not in plain.calls.last.request.headers


@respx.mock
def test_a_token_over_plain_http_to_a_remote_host_is_refused_before_any_request() -> None:
    with pytest.raises(BadInputError) as caught:
        GitHubHTTP("http://ghe.example.com/api/v3", TOKEN)
    assert exit_code_of(caught.value) == 2
    assert TOKEN not in caught.value.message
    assert not respx.calls


@pytest.mark.parametrize("api", ["http://127.0.0.1:8080/api/v3", "http://localhost/api/v3"])
def test_a_token_over_http_to_loopback_is_allowed(api: str) -> None:
    GitHubHTTP(api, TOKEN).close()


@pytest.mark.parametrize(
    "api", ["ftp://x/api/v3", "api.github.com", "https://user:pw@ghe.example.com/api/v3", ""]
)
def test_malformed_api_urls_are_bad_input(api: str) -> None:
    with pytest.raises(BadInputError) as caught:
        GitHubHTTP(api, None)
    assert "pw" not in caught.value.message


def test_raw_and_graphql_urls_follow_the_api_base() -> None:
    assert Endpoints.from_api_url(API, has_token=False) == Endpoints(
        API, "https://raw.githubusercontent.com", f"{API}/graphql"
    )
    ghe = Endpoints.from_api_url("https://ghe.example.com:8443/api/v3/", has_token=True)
    assert ghe.api == "https://ghe.example.com:8443/api/v3"
    assert ghe.raw == "https://ghe.example.com:8443/raw"
    assert ghe.graphql == "https://ghe.example.com:8443/api/graphql"


@respx.mock
def test_5xx_is_retried_with_backoff_then_succeeds() -> None:
    route = respx.get(f"{API}/x").mock(
        side_effect=[httpx.Response(502), httpx.Response(503), httpx.Response(200, json=[1])]
    )
    http, sleeps = client()
    assert http.api_get("/x").json() == [1]
    assert route.call_count == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0]


@respx.mock
def test_5xx_three_times_is_a_network_error() -> None:
    route = respx.get(f"{API}/x").respond(500)
    with pytest.raises(NetworkError, match="500") as caught:
        client()[0].api_get("/x")
    assert route.call_count == 3 and exit_code_of(caught.value) == 1


@respx.mock
def test_timeouts_are_retried() -> None:
    route = respx.get(f"{API}/x").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(NetworkError, match="timed out"):
        client()[0].api_get("/x")
    assert route.call_count == 3


@pytest.mark.parametrize("status", [401, 404, 422, 403])
@respx.mock
def test_4xx_is_not_retried_and_carries_githubs_message(status: int) -> None:
    route = respx.get(f"{API}/x").mock(return_value=basic_error(status, "Bad things here"))
    with pytest.raises(HTTPStatusError, match="Bad things here") as caught:
        client(TOKEN)[0].api_get("/x")
    assert route.call_count == 1
    assert caught.value.status == status and exit_code_of(caught.value) == 1
    assert TOKEN not in caught.value.message


@respx.mock
def test_rate_limit_resetting_soon_is_waited_out() -> None:
    limited = httpx.Response(
        403,
        json={"message": "API rate limit exceeded for 1.2.3.4.", "status": "403"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 30)},
    )
    route = respx.get(f"{API}/x").mock(side_effect=[limited, httpx.Response(200, json={})])
    http, sleeps = client()
    http.api_get("/x")
    assert route.call_count == 2
    assert 30 <= sleeps[0] <= 32


@respx.mock
def test_secondary_rate_limit_honours_retry_after() -> None:
    limited = httpx.Response(429, headers={"retry-after": "5"})
    respx.get(f"{API}/x").mock(side_effect=[limited, httpx.Response(200, json={})])
    http, sleeps = client()
    http.api_get("/x")
    assert 5 <= sleeps[0] <= 7


@respx.mock
def test_rate_limit_resetting_later_says_when_and_how_to_raise_it() -> None:
    respx.get(f"{API}/x").respond(
        403,
        json={"message": "API rate limit exceeded for 1.2.3.4.", "status": "403"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 1800)},
    )
    http, sleeps = client()
    with pytest.raises(RateLimitedError) as caught:
        http.api_get("/x")
    assert sleeps == []
    assert exit_code_of(caught.value) == 1
    assert "2027-01-15 08:30:00 UTC" in caught.value.message
    assert "GH_TOKEN" in caught.value.message


@respx.mock
def test_a_304_to_a_conditional_request_is_not_counted_as_core() -> None:
    route = respx.get(f"{API}/x").respond(304, headers={"etag": 'W/"abc"'})
    http, _ = client()
    reply = http.api_get("/x", etag='W/"abc"')
    assert reply.status == 304
    assert route.calls.last.request.headers["if-none-match"] == 'W/"abc"'
    assert (http.stats.core, http.stats.not_modified) == (0, 1)


@pytest.mark.parametrize(
    ("text", "content_type", "message"),
    [
        pytest.param("<html>login</html>", "text/html", "HTML page", id="html-page"),
        pytest.param('{"tree": [', "application/json", "malformed JSON", id="malformed-json"),
    ],
)
@respx.mock
def test_a_body_that_is_not_json_is_a_network_error(
    text: str, content_type: str, message: str
) -> None:
    respx.get(f"{API}/x").respond(200, text=text, headers={"content-type": content_type})
    with pytest.raises(NetworkError, match=message):
        client()[0].api_get("/x").json()


@respx.mock
def test_an_html_error_page_gives_the_status_not_the_page() -> None:
    respx.get(f"{API}/x").respond(
        404, text="<html>" + "x" * 5000, headers={"content-type": "text/html"}
    )
    with pytest.raises(NetworkError) as caught:
        client()[0].api_get("/x")
    assert "404" in caught.value.message and len(caught.value.message) < 300


def test_the_token_is_not_in_the_clients_repr() -> None:
    http, _ = client(TOKEN)
    assert TOKEN not in repr(http) and TOKEN not in repr(http.__dict__.get("endpoints"))
