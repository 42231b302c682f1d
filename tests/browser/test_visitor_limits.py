"""What one unsigned visitor can make the server hold, driven over Streamlit's own protocol
(tests/streamlit_client.py) against the real server: uploads only from an editor's session, a
huge user name never held, a huge link refused with a message."""

import pytest
from streamlit_client import Visitor
from websockets.exceptions import ConnectionClosed

from kindred_map import view

pytestmark = pytest.mark.browser


@pytest.fixture
def url(viewer_url) -> str:
    return viewer_url


def _sign_in(visitor: Visitor, name: str, password: str) -> Visitor:
    return visitor.run(values={"User name": name, "Password": password, "Sign in": True})


def test_a_viewer_session_cannot_upload_and_an_editors_can(url, editor_credentials):
    visitor = Visitor(url).run()
    try:
        assert "Project file" not in visitor.widgets  # no uploader is drawn for a viewer
        assert visitor.upload("partner.csv", b"name,postcode\nPantry,L1 8JQ\n") == 400
        assert visitor.upload("big.csv", b"x" * 5_000_000) == 400
        _sign_in(visitor, *editor_credentials)
        assert "Project file" in visitor.widgets
        assert visitor.upload("partner.csv", b"name,postcode\nPantry,L1 8JQ\n") == 204
        visitor.run(values={"Sign out": True})
        assert visitor.upload("partner.csv", b"name,postcode\nPantry,L1 8JQ\n") == 400
    finally:
        visitor.close()


def test_a_long_user_name_is_cut_and_a_huge_one_never_reaches_the_page(url):
    """The box keeps 64 characters of a name (Streamlit enforces max_chars on the server); a
    2 MB message closes the connection (server.maxWidgetStateSize), so nothing is held."""
    visitor = Visitor(url).run()
    try:
        _sign_in(visitor, "x" * 100, "a wrong password")
        assert "user name or password not recognised" in visitor.texts
        with pytest.raises(ConnectionClosed):
            visitor.run(values={"User name": "y" * 2_000_000, "Sign in": True})
        assert not visitor.alive()
    finally:
        visitor.close()


def test_a_huge_link_list_is_refused_with_a_message(url):
    wards = ",".join(["E05000000XX"] * 22_400)  # 269 KB, as in issue 21
    visitor = Visitor(url).run(query=f"wards={wards}")
    try:
        expected = (
            f"Ignored wards in the link: {len(wards):,} characters; a list may hold at most "
            f"{view.LINK_LIST_MAX_CHARS:,}"
        )
        assert any(expected in " ".join(text.replace("\\", "").split()) for text in visitor.texts)
    finally:
        visitor.close()
