"""A dashboard session driven over Streamlit's own protocol (WebSocket + upload endpoint), as a
hostile script would drive it: no browser, so a test or benchmark can send what no browser
sends (a 20 MB user name, a file to a session that shows no uploader)."""

import uuid

import requests
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

XSRF_COOKIE = "_streamlit_xsrf"
RUN_TIMEOUT_S = 180
RERUN = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
"""A run cut short by st.rerun: the next run's messages follow."""


class Visitor:
    """One session of the dashboard at ``url``: `run` it (with a link's query and widget
    values), read its widgets, `upload` to its upload endpoint."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False  # local server: no proxy
        self.http.get(f"{url}/_stcore/health", timeout=30).raise_for_status()
        self.xsrf = self.http.cookies[XSRF_COOKIE]
        self.socket = connect(
            url.replace("http", "ws", 1) + "/_stcore/stream",
            subprotocols=["streamlit", self.xsrf],
            origin=url,
            additional_headers={"Cookie": f"{XSRF_COOKIE}={self.xsrf}"},
            max_size=None,
            legacy=True,
            open_timeout=30,
        )
        self.session_id = ""
        self.widgets: dict[str, object] = {}
        """The last run's widgets by label (their protobuf elements)."""
        self.texts: list[str] = []
        """The last run's markdown, alerts and captions."""

    def run(self, query: str = "", values: dict[str, object] | None = None) -> "Visitor":
        """One rerun with the link's ``query`` and ``values`` by widget label (a string for a
        text input, True to press a button); returns when the script has finished. A new
        session's first run is followed by the one a browser's map starts when drawn (the
        first run sends the header and the map only: `kindred_map.pages.map.map_page`)."""
        first = not self.session_id
        self._run(query, values)
        return self._run(query) if first else self

    def _run(self, query: str, values: dict[str, object] | None = None) -> "Visitor":
        message = BackMsg()
        message.rerun_script.query_string = query
        for label, value in (values or {}).items():
            state = WidgetState(id=self.widgets[label].id)
            if value is True:
                state.trigger_value = True
            else:
                state.string_value = str(value)
            message.rerun_script.widget_states.widgets.append(state)
        self.socket.send(message.SerializeToString())
        self.widgets, self.texts = {}, []
        while True:
            forward = ForwardMsg()
            forward.ParseFromString(self.socket.recv(timeout=RUN_TIMEOUT_S))
            kind = forward.WhichOneof("type")
            if kind == "new_session":
                self.session_id = forward.new_session.initialize.session_id
            elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                self._keep(forward.delta.new_element)
            elif kind == "script_finished" and forward.script_finished == RERUN:
                self.widgets, self.texts = {}, []
            elif kind == "script_finished":
                return self

    def _keep(self, element) -> None:
        kind = element.WhichOneof("type")
        if kind in ("text_input", "button", "file_uploader"):
            widget = getattr(element, kind)
            self.widgets[widget.label] = widget
        elif kind in ("markdown", "alert"):
            self.texts.append(getattr(element, kind).body)

    def alive(self) -> bool:
        """Whether the server still keeps this session's connection open."""
        try:
            self.socket.ping().wait(timeout=10)
        except (ConnectionClosed, TimeoutError):
            return False
        return True

    def upload(self, name: str, data: bytes) -> int:
        """PUT a file to this session's upload endpoint, as a file uploader would; the status."""
        response = self.http.put(
            f"{self.url}/_stcore/upload_file/{self.session_id}/{uuid.uuid4()}",
            files={"file": (name, data, "text/csv")},
            headers={"X-Xsrftoken": self.xsrf},
            timeout=120,
        )
        return response.status_code

    def close(self) -> None:
        self.socket.close()
        self.http.close()
