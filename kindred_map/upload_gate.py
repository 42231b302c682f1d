"""Streamlit's upload endpoint opened only to signed-in editors' sessions, one file each.

Streamlit (1.67) stores any file PUT to ``/_stcore/upload_file/<session>/<any id>`` for any
live session, in memory until the session ends, whether or not the page shows a file uploader:
a viewer's session took 190 MB files, 2.7 GB in 9 s. `install` wraps the running server's two
entry points: its session check (asked by the endpoint before it reads the body, so a refused
upload costs no memory) and its uploaded-file manager's ``add_file`` (so nothing a refused
session sends is ever kept). The dashboard marks each run's session with `allow` (an editor
signed in) or not; a session that stops being allowed loses its stored file at once.
"""

import threading

_allowed: set[str] = set()
_lock = threading.Lock()
_manager = None


def may_upload(session_id: str) -> bool:
    """Whether this session's uploads are taken (an editor is signed in to it)."""
    with _lock:
        return session_id in _allowed


def allow(session_id: str, allowed: bool) -> None:
    """Open (``allowed``) or close the upload endpoint to this session; closing drops the file
    it holds."""
    with _lock:
        was = session_id in _allowed
        if allowed:
            _allowed.add(session_id)
        else:
            _allowed.discard(session_id)
    if was and not allowed and _manager is not None:
        _manager.remove_session_files(session_id)


def install(runtime) -> None:
    """Guard ``runtime``'s (a running `streamlit.runtime.Runtime`) upload endpoint; once per
    server process (a second call changes nothing)."""
    global _manager
    manager = runtime.uploaded_file_mgr
    if manager is _manager:
        return
    is_active_session = runtime.is_active_session
    add_file = manager.add_file
    remove_session_files = manager.remove_session_files

    def active_and_allowed(session_id: str) -> bool:
        return may_upload(session_id) and is_active_session(session_id)

    def add_one_file(session_id: str, file) -> None:
        if not may_upload(session_id):
            return
        remove_session_files(session_id)  # the uploader takes one file: keep only the newest
        add_file(session_id, file)

    def forget_session(session_id: str) -> None:  # called when a session ends
        with _lock:
            _allowed.discard(session_id)
        remove_session_files(session_id)

    runtime.is_active_session = active_and_allowed
    manager.add_file = add_one_file
    manager.remove_session_files = forget_session
    _manager = manager
