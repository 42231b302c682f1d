"""The browser harness itself: the shared profile's pages never reach another machine, and
their requests are recorded though nothing is routed."""

import pytest

pytestmark = pytest.mark.browser

ELSEWHERE = ["http://example.com/", "http://192.0.2.1/"]
"""A name and an address (TEST-NET-1) of other machines."""


def test_a_request_to_another_machine_is_refused_and_recorded(profile_pages, network):
    for url in ELSEWHERE:
        page = profile_pages()  # one page each: closing a page after two failed loads hangs
        with pytest.raises(Exception, match="ERR_PROXY_CONNECTION_FAILED"):
            page.goto(url, timeout=15_000)
    assert network.external == ELSEWHERE
    with pytest.raises(AssertionError, match="requests left the machine"):
        network.assert_stayed_local()
    network.assert_stayed_local(allowed_hosts=frozenset({"example.com", "192.0.2.1"}))
