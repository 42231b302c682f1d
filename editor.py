"""The dashboard's editor controls: sign-in, one project's edits and history, imports, checks.

Streamlit code only (like app.py, which calls it); the work is in `kindred_map.stewardship`,
`kindred_map.freshness` and `kindred_map.auth`. Viewers (not signed in) get none of it except
the freshness counts, and nothing here writes unless an editor is signed in."""

from datetime import date

import pandas as pd
import streamlit as st

from kindred_map import auth, duplicates, freshness, stewardship, store, upload
from kindred_map.schema import LOCATION_PRECISIONS, project_types
from kindred_map.text import md_escape

SIGNED_IN = "signed_in_user"
PASSWORD_MAX_CHARS = 200
"""The password box's limit (bcrypt reads 72 bytes; passwords are set with `users add`)."""
OPENED = "opened_versions"
"""Session key: {project id: the version the editor opened}, for the conflict check."""
DONE = "editor_message"
ADD_FIELDS = (
    "name",
    "type",
    "organisation",
    "address",
    "postcode",
    "website",
    "opening_hours",
    "parish",
    "location_precision",
    "lat",
    "lon",
)
"""Fields of the add form (the edit form offers every editable field)."""


SIGNED_OUT = "signed_out_message"


def current_user() -> auth.User | None:
    """The signed-in editor or admin of this browser session, or None for a viewer.

    Checked against the users file on every run (`auth.confirm`): a user removed, or whose
    password changed, is signed out here and told so."""
    user = st.session_state.get(SIGNED_IN)
    if not (isinstance(user, auth.User) and user.can("edit")):
        return None
    try:
        return auth.confirm(user)
    except ValueError as error:
        st.session_state.pop(SIGNED_IN, None)
        st.session_state[SIGNED_OUT] = str(error)
        return None


def confirm_signed_in() -> auth.User:
    """The signed-in user, checked against the users file now: called right before every
    write, so a session whose user was removed a moment ago writes nothing."""
    user = current_user()
    if user is None:
        raise ValueError(auth.SIGNED_OUT)
    return user


def sign_in_box() -> auth.User | None:
    """The sidebar's sign-in form (or who is signed in, with a sign-out button)."""
    st.subheader("Editors")
    user = current_user()
    signed_out = st.session_state.pop(SIGNED_OUT, None)
    if signed_out:
        st.warning(signed_out)
    if not auth.editing_enabled():
        st.info(
            "This dashboard is read-only: no editors are set up. To enable editing, run "
            "**kindred-map users add NAME** on the server, then sign in here."
        )
        return None
    if user is not None:
        st.write(f"Signed in as **{_md(user.name)}** ({user.role}).")
        if st.button("Sign out", key="sign_out"):
            st.session_state.pop(SIGNED_IN, None)
            st.rerun()
        return user
    # Cleared on submit: neither the password nor a huge typed name stays in the session.
    with st.form("sign_in", clear_on_submit=True):
        username = st.text_input("User name", key="sign_in_user", max_chars=auth.MAX_USERNAME_CHARS)
        password = st.text_input(
            "Password", type="password", key="sign_in_password", max_chars=PASSWORD_MAX_CHARS
        )
        if st.form_submit_button("Sign in"):
            try:
                st.session_state[SIGNED_IN] = auth.sign_in(username, password)
            except ValueError as error:
                st.error(str(error))
            else:
                st.rerun()
    st.caption("Viewers need no account. Editors sign in to add, edit, check and retire.")
    return None


def _md(text) -> str:
    """Text shown in Markdown exactly as typed (partner data is data, never markup)."""
    return md_escape(str(text))


def freshness_counts(counts: dict[str, int]) -> None:
    """Checked / stale / never checked counts (`freshness.counts`; the first screen, for
    everyone)."""
    lines = [
        f"- {freshness.FRESHNESS[name].capitalize()}: **{count:,}**"
        for name, count in counts.items()
    ]
    st.markdown("\n".join(lines))  # Markdown, not metric cards: seven fewer scripts to load
    st.caption(
        "When staff last confirmed that each project still runs (Checked today in the editor); "
        "a stale project may have stopped."
    )


def _announce() -> None:
    message = st.session_state.pop(DONE, None)
    if message:
        st.success(_md(message))


def _saved(message: str) -> None:
    st.session_state[DONE] = message
    st.rerun()


def editor_panel(store_file, user: auth.User) -> None:
    """Everything an editor can do to the store, in tabs."""
    st.header("Keep the directory true")
    _announce()
    projects = store.read_projects(store_file, include_retired=True)
    edit, add, due, imports = st.tabs(
        ["Edit a project", "Add a project", "Needs checking", "Imports"]
    )
    with edit:
        edit_section(store_file, user, projects)
    with add:
        add_section(store_file, user)
    with due:
        needs_checking_section(projects[projects["retired_at"].eq("")])
    with imports:
        imports_section(store_file, user)


def _label(record: pd.Series) -> str:
    retired = " [retired]" if record["retired_at"] else ""
    return f"{record['name']} - {record['postcode'] or record['LAD25NM']} ({record['id']}){retired}"


def edit_section(store_file, user: auth.User, projects: pd.DataFrame) -> None:
    """Pick a project; edit its fields, mark it checked, retire or restore it; its history."""
    if projects.empty:
        st.info("The store holds no projects yet.")
        return
    ids = projects["id"].tolist()
    labels = dict(zip(ids, projects.apply(_label, axis=1), strict=True))
    pid = st.selectbox("Project", ids, format_func=labels.get, key="edit_pick")
    record = projects.set_index("id").loc[pid]
    opened = st.session_state.setdefault(OPENED, {})
    opened.setdefault(pid, int(record["version"]))
    st.caption(
        _md(
            f"Version {int(record['version'])}; last checked {record['last_checked'] or 'never'}"
            + (f" by {record['checked_by']}" if record["checked_by"] else "")
        )
    )
    with st.form("edit_form"):
        # Keyed by project and version: after any save the form shows the stored values again.
        changes = _record_inputs(
            "edit", record, f"_{pid}_{int(record['version'])}", stewardship.EDITABLE_FIELDS
        )
        if st.form_submit_button("Save changes"):
            changed = {k: v for k, v in changes.items() if str(v) != _shown(record[k])}
            _apply(
                lambda: stewardship.edit_project(
                    store_file, pid, changed, opened[pid], user.name, "form"
                ),
                pid,
                "Saved",
            )
    left, right = st.columns(2)
    if left.button("Checked today", key="verify_today"):
        _apply(
            lambda: stewardship.verify_project(store_file, pid, user.name, opened[pid]),
            pid,
            "Marked checked today:",
        )
    if record["retired_at"]:
        right.write(f"Retired on {record['retired_at']}: {_md(record['retired_reason'])}")
        if right.button("Restore", key="restore"):
            _apply(
                lambda: stewardship.restore_project(store_file, pid, user.name, opened[pid]),
                pid,
                "Restored",
            )
    else:
        reason = right.text_input("Reason for retiring", key="retire_reason")
        if right.button("Retire", key="retire"):
            _apply(
                lambda: stewardship.retire_project(store_file, pid, reason, user.name, opened[pid]),
                pid,
                "Retired",
            )
    st.subheader("History")
    st.dataframe(history_table(store_file, pid), hide_index=True, key="history_table")


def _shown(value) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _record_inputs(
    prefix: str, record: pd.Series | None, suffix: str = "", names=ADD_FIELDS
) -> dict:
    """The form's inputs for ``names`` (keys ``{prefix}_{field}{suffix}``), filled from
    ``record``; their values."""
    values = {}
    types = list(project_types())
    for name in names:
        now = "" if record is None else _shown(record[name])
        key = f"{prefix}_{name}{suffix}"
        if name == "type":
            values[name] = st.selectbox(
                "Type", types, index=types.index(now) if now in types else 0, key=key
            )
        elif name == "location_precision":
            options = ["", *LOCATION_PRECISIONS]
            values[name] = st.selectbox(
                "Location precision (ward_only: a home; never shown)",
                options,
                index=options.index(now) if now in options else 0,
                key=key,
            )
        else:
            values[name] = st.text_input(name.replace("_", " ").capitalize(), now, key=key)
    return values


def _apply(change, pid: str, done: str) -> None:
    """Run one change; on success forget the opened version and report, else say why."""
    try:
        confirm_signed_in()
        saved = change()
    except stewardship.VersionConflict as error:
        st.session_state.get(OPENED, {}).pop(pid, None)
        st.error(_md(f"Not saved: {error}"))
        return
    except ValueError as error:
        st.error(_md(error))
        return
    st.session_state.get(OPENED, {}).pop(saved["id"], None)
    _saved(f"{done} {saved['name']} (version {saved['version']}).")


def history_table(store_file, pid: str) -> pd.DataFrame:
    """The project's events, newest first, with what each changed."""
    events = stewardship.read_history(store_file, pid)
    changes = [
        "; ".join(stewardship.describe_change(b, a))
        for b, a in zip(events["before"], events["after"], strict=True)
    ]
    table = events[["version", "at", "who", "action", "source"]].assign(changes=changes)
    return table.iloc[::-1].reset_index(drop=True)


def add_section(store_file, user: auth.User) -> None:
    """A form for one new project, checked like an import row (postcode looked up)."""
    with st.form("add_form", clear_on_submit=False):
        values = _record_inputs("add", None)
        if st.form_submit_button("Add project"):
            record = {k: v for k, v in values.items() if v}
            try:
                confirm_signed_in()
                saved = stewardship.add_project(store_file, record, user.name)
            except ValueError as error:
                st.error(_md(error))
            else:
                _saved(f"Added {saved['name']} as {saved['id']} ({saved['WD24NM']}).")


def needs_checking_section(projects: pd.DataFrame) -> None:
    """Stale and never-checked projects, oldest check first, and the call sheet."""
    due = freshness.needs_checking(projects)
    st.write(f"{len(due):,} projects need checking (never checked first, then the oldest).")
    sheet = freshness.call_sheet(projects)
    st.dataframe(sheet, hide_index=True, key="needs_checking")
    st.download_button(
        "Download the call sheet (CSV)",
        data=freshness.call_sheet_csv(projects),
        file_name=f"call-sheet-{date.today().isoformat()}.csv",
        mime="text/csv",
        key="call_sheet",
        on_click="ignore",
    )


def imports_section(store_file, user: auth.User) -> None:
    """The import log, and undoing one import."""
    log = store.read_imports(store_file)
    if log.empty:
        st.info("No imports yet.")
        return
    shown = ["import_id", "imported_at", "who", "file", "new", "updated", "unchanged"]
    st.dataframe(log[shown].iloc[::-1], hide_index=True, key="imports_table")
    number = st.selectbox("Import to undo", log["import_id"].iloc[::-1].tolist(), key="undo_pick")
    if st.button("Undo this import", key="undo_import"):
        try:
            confirm_signed_in()
            report = stewardship.undo_import(store_file, number, user.name)
        except ValueError as error:
            st.error(_md(error))
            return
        left = "; ".join(report.conflicts)
        _saved(
            f"Import {number} undone: {len(report.reverted)} put back, "
            f"{len(report.removed)} removed"
            + (f", {len(report.conflicts)} left alone (changed since): {left}" if left else ".")
        )


MAPPED_FIELDS = (
    "name",
    "type",
    "postcode",
    "address",
    "organisation",
    "website",
    "id",
    "lat",
    "lon",
)
"""Fields the upload's column mapping offers (others are recognised by their header)."""
NOT_USED = "(not in this file)"


def upload_templates() -> None:
    """Download buttons for an empty upload template (CSV and XLSX)."""
    left, right = st.columns(2)
    left.download_button(
        "Template (CSV)",
        duplicates.template_csv(),
        "kindred-map-template.csv",
        "text/csv",
        key="template_csv",
        on_click="ignore",
    )
    right.download_button(
        "Template (XLSX)",
        duplicates.template_xlsx(),
        "kindred-map-template.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="template_xlsx",
        on_click="ignore",
    )


def column_mapping(name: str, data: bytes) -> dict[str, str]:
    """Let the editor choose which file column feeds each main field (recognised ones first)."""
    columns, found = upload.upload_columns(name, data)
    options = [NOT_USED, *columns]
    mapping = {}
    with st.expander("Columns: which column is which", expanded=False):
        for field in MAPPED_FIELDS:
            guess = (found.get(field) or [NOT_USED])[0]
            chosen = st.selectbox(
                field.replace("_", " ").capitalize(),
                options,
                index=options.index(guess) if guess in options else 0,
                key=f"map_{field}",
            )
            if chosen != NOT_USED and chosen != guess:
                mapping[field] = chosen
    return mapping


def duplicate_choices(name: str, data: bytes, store_file, mapping: dict) -> dict:
    """Likely duplicates of the file's rows in the store, each with merge / keep both / skip."""
    found = upload.upload_duplicates(name, data, store_file, mapping)
    if found.empty:
        return {}
    st.warning(
        f"{found['row'].nunique():,} row(s) look like projects already stored. Choose for "
        "each: merge (update the stored project), keep both, or skip the row."
    )
    choices = {}
    for row, matches in found.groupby("row", sort=True):
        best = matches.iloc[0]
        choice = st.radio(
            _md(f"Row {row}: {best['name']} ~ stored {best['stored_name']} ({best['why']})"),
            duplicates.CHOICES,
            index=1,
            horizontal=True,
            key=f"duplicate_{row}",
        )
        choices[int(row)] = (choice, best["stored_id"])
    return choices
