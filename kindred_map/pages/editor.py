"""The editor's controls: sign-in, one project's edits and history, imports, checks.

Streamlit code only; the work is in `kindred_map.stewardship`, `kindred_map.freshness` and
`kindred_map.auth`. Viewers (not signed in) get none of it, and nothing here writes unless an
editor is signed in. The upload screen is `kindred_map.pages.upload`."""

from datetime import date

import pandas as pd
import streamlit as st

from kindred_map import auth, downloads, freshness, roles, stewardship, store
from kindred_map.pages.common import LOG, load_all_projects
from kindred_map.schema import LOCATION_PRECISIONS, project_types
from kindred_map.text import md_escape

SIGNED_IN = "signed_in_user"
PASSWORD_MAX_CHARS = 200
"""The password box's limit (bcrypt reads 72 bytes; passwords are set with `users add`)."""
PICK = "edit_pick"
"""The project picker's widget key: its options are project ids, shown by ``format_func``."""
PICKED = "edit_picked"
"""Session key: the id of the project being edited, kept apart from the picker's own state.
In the browser a selectbox holds its option's label: after a save that changes the label (a
new postcode or name, "[retired]") the browser sends a label no option has any more, and
Streamlit falls back to the first option. Every run puts the picker back on this id; only
the editor's own choice (`_picked`) or a new project changes it."""
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
ROLE_HELD = "provider_role"
"""Session key: the role a person signed in through the identity provider had on the last run,
to tell them when an admin changes it."""


def provider_names() -> list[str]:
    """The identity providers in the ``[auth]`` secrets (`roles.providers`); [] for none."""
    try:
        section = st.secrets.get("auth") if st.secrets.load_if_toml_exists() else None
    except (FileNotFoundError, ValueError):  # a secrets file that does not parse: no provider
        section = None
    return roles.providers(section.to_dict()) if section else []


def provider_claims() -> dict:
    """``st.user``'s claims when someone is signed in through a provider, else {}."""
    claims = st.user.to_dict()
    return claims if claims.get("is_logged_in") else {}


def signed_in() -> auth.User | None:
    """Whoever is signed in on this browser session (a viewer too), or None.

    Checked against the files on every run: a password account removed, or whose password or
    role changed, is signed out here and told so (`auth.confirm`); a person signed in through
    the identity provider gets the role the roles file gives them now (`roles.person`)."""
    user = st.session_state.get(SIGNED_IN)
    if isinstance(user, auth.User):
        try:
            return auth.confirm(user)
        except ValueError as error:
            st.session_state.pop(SIGNED_IN, None)
            st.session_state[SIGNED_OUT] = str(error)
            LOG.info("session of %r ended: %s", user.username, error)
    claims = provider_claims()
    if not claims:
        return None
    person = roles.person(claims)
    role = person.role if person else None
    held = st.session_state.get(ROLE_HELD)
    if held is None:
        LOG.info("signed in through the identity provider: %r as %s", claims.get("email"), role)
    if held is not None and held != (role or ""):
        st.session_state[SIGNED_OUT] = roles.ROLE_CHANGED.format(
            role=role or "not allowed to see this map"
        )
    st.session_state[ROLE_HELD] = role or ""
    return person


def current_user() -> auth.User | None:
    """The signed-in editor or admin of this browser session, or None for a viewer
    (`signed_in`, read afresh on every run)."""
    user = signed_in()
    return user if user is not None and user.can("edit") else None


def confirm_signed_in() -> auth.User:
    """The signed-in user, checked against the users and roles files now: called right before
    every write, so a session whose user was removed a moment ago writes nothing."""
    user = current_user()
    if user is None:
        raise ValueError(auth.SIGNED_OUT)
    return user


def sign_out(user: auth.User) -> None:
    """End this session's sign-in: a password account's here, a provider's with ``st.logout``
    (which also signs out at the provider where it allows)."""
    st.session_state.pop(SIGNED_IN, None)
    st.session_state.pop(ROLE_HELD, None)
    LOG.info("signed out: %r", user.username)
    if user.provider:
        st.logout()  # sends the browser to the provider's sign-out, then back
    else:
        st.rerun()


def sign_in_controls(form_key: str = "sign_in") -> None:
    """A button per identity provider, and the password form where password accounts exist."""
    for name in provider_names():
        label = f"Sign in with {name.capitalize()}" if name else "Sign in with your work account"
        if st.button(label, key=f"{form_key}_provider_{name}", type="primary"):
            st.login(name or None)
    if not auth.editing_enabled():
        return
    # Cleared on submit: neither the password nor a huge typed name stays in the session.
    with st.form(form_key, clear_on_submit=True):
        username = st.text_input(
            "User name", key=f"{form_key}_user", max_chars=auth.MAX_USERNAME_CHARS
        )
        password = st.text_input(
            "Password", type="password", key=f"{form_key}_password", max_chars=PASSWORD_MAX_CHARS
        )
        if st.form_submit_button("Sign in"):
            try:
                user = auth.sign_in(username, password)
            except ValueError as error:
                LOG.warning("sign-in refused for %r: %s", username, error)
                st.error(str(error))
            else:
                LOG.info("signed in with a password: %r as %s", user.username, user.role)
                st.session_state[SIGNED_IN] = user
                st.rerun()


def sign_in_box() -> auth.User | None:
    """The sidebar's sign-in (or who is signed in, with a sign-out button); the editor or
    admin signed in, else None."""
    st.subheader("Sign in")
    user = signed_in()
    signed_out = st.session_state.pop(SIGNED_OUT, None)
    if signed_out:
        st.warning(signed_out)
    if user is not None:
        st.write(f"Signed in as **{_md(user.name)}** ({user.role}).")
        if st.button("Sign out", key="sign_out"):
            sign_out(user)
        return user if user.can("edit") else None
    if not (provider_names() or auth.editing_enabled()):
        st.info(
            "This dashboard is read-only: no editors are set up. To enable editing, run "
            "**kindred-map users add NAME** on the server, or set up sign-in with the "
            "organisation's accounts (README), then sign in here."
        )
        return None
    sign_in_controls()
    st.caption("Viewers need no account. Editors sign in to add, edit, check and retire.")
    return None


def _md(text) -> str:
    """Text shown in Markdown exactly as typed (partner data is data, never markup)."""
    return md_escape(str(text))


def _announce() -> None:
    message = st.session_state.pop(DONE, None)
    if message:
        st.success(_md(message))


def _saved(message: str) -> None:
    """After a write: the message for the next run, and the write in the server's log."""
    user = current_user()
    LOG.info("write by %r: %r", user.username if user else None, message)
    st.session_state[DONE] = message
    st.rerun()


def editor_panel(signature: tuple, user: auth.User) -> None:
    """Everything an editor can do to the store (``signature``: `store.signature`), in tabs."""
    st.header("Keep the directory true")
    _announce()
    store_file = signature[0]
    projects = load_all_projects(signature)
    edit, add, due, imports = st.tabs(
        ["Edit a project", "Add a project", "Needs checking", "Imports"]
    )
    with edit:
        edit_section(signature, user, projects)
    with add:
        add_section(store_file, user)
    with due:
        needs_checking_section(projects[projects["retired_at"].eq("")])
    with imports:
        imports_section(store_file, user)


def _label(record: pd.Series) -> str:
    retired = " [retired]" if record["retired_at"] else ""
    return f"{record['name']} - {record['postcode'] or record['LAD25NM']} ({record['id']}){retired}"


def _picked(ids: frozenset) -> None:
    """The picker's on_change: the editor chose a project. A value that is no id is no choice
    (a browser still holding a label that a save has since changed)."""
    chosen = st.session_state.get(PICK)
    if chosen in ids:
        st.session_state[PICKED] = chosen


def pick_project(projects: pd.DataFrame) -> str:
    """The project picker: options are ids (labels by ``format_func``); the picked id is kept in
    the session (PICKED) and put back into the picker on every run, so a save, check, retire,
    restore or undo never moves it. Returns the picked id."""
    ids = projects["id"].tolist()
    labels = dict(zip(ids, projects.apply(_label, axis=1), strict=True))
    picked = st.session_state.get(PICKED)
    if picked not in labels:
        if picked:
            st.info(_md(f"Project {picked} is no longer in the store (its import was undone)."))
        picked = ids[0]
    st.session_state[PICKED] = picked
    st.session_state[PICK] = picked
    st.selectbox(
        "Project",
        ids,
        format_func=labels.__getitem__,
        key=PICK,
        on_change=_picked,
        args=(frozenset(ids),),
    )
    return picked


def edit_section(signature: tuple, user: auth.User, projects: pd.DataFrame) -> None:
    """Pick a project; edit its fields, mark it checked, retire or restore it; its history."""
    store_file = signature[0]
    if projects.empty:
        st.info("The store holds no projects yet.")
        return
    pid = pick_project(projects)
    record = projects.set_index("id").loc[pid]
    opened = st.session_state.setdefault(OPENED, {})
    opened.setdefault(pid, int(record["version"]))
    st.markdown(_md(f"Editing {record['name']} ({pid})"))
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
        reason = right.text_input("Reason for retiring", key=f"retire_reason_{pid}")
        if right.button("Retire", key="retire"):
            _apply(
                lambda: stewardship.retire_project(store_file, pid, reason, user.name, opened[pid]),
                pid,
                "Retired",
            )
    st.subheader("History")
    st.dataframe(history_table(signature, pid), hide_index=True, key="history_table")


def _shown(value) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _record_inputs(
    prefix: str, record: pd.Series | None, suffix: str = "", names=ADD_FIELDS
) -> dict:
    """The form's inputs for ``names`` (keys ``{prefix}_{field}{suffix}``), filled from
    ``record``; their values."""
    values = {}
    types = project_types()
    for name in names:
        now = "" if record is None else _shown(record[name])
        key = f"{prefix}_{name}{suffix}"
        if name == "type":
            values[name] = st.selectbox(
                "Type",
                list(types),
                index=list(types).index(now) if now in types else 0,
                format_func=lambda kind: types[kind]["label"],
                key=key,
            )
        elif name == "location_precision":
            options = ["", *LOCATION_PRECISIONS]
            values[name] = st.selectbox(
                "Location precision (ward_only: a home; never shown)",
                options,
                index=options.index(now) if now in options else 0,
                format_func=lambda precision: precision or "(not given: from how it is placed)",
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
    _saved(f"{done} {saved['name']} ({saved['id']}), now version {saved['version']}.")


@st.cache_resource(max_entries=32)
def history_table(signature: tuple, pid: str) -> pd.DataFrame:
    """The project's events, newest first, with what each changed: read once per store version
    (``signature``) and project, not on every run of an editor's page; read-only."""
    events = stewardship.read_history(signature[0], pid)
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
                st.session_state[PICKED] = saved["id"]  # the editor goes on with it
                _saved(f"Added {saved['name']} as {saved['id']} ({saved['WD24NM']}).")


def needs_checking_section(projects: pd.DataFrame) -> None:
    """Stale and never-checked projects, oldest check first, and the call sheet."""
    due = freshness.needs_checking(projects)
    st.write(
        f"{len(due):,} projects in the store need checking, whatever the filters (never "
        "checked first, then the oldest)."
    )
    sheet = freshness.call_sheet(projects)
    st.dataframe(sheet, hide_index=True, key="needs_checking")
    st.download_button(
        "Download the call sheet (CSV)",
        data=lambda: downloads.call_sheet_csv(projects),  # made when clicked, not every run
        file_name=f"call-sheet-{date.today().isoformat()}.csv",
        mime="text/csv",
        key="call_sheet",
        on_click="ignore",
    )


UNDO_PICK, UNDO_CHOSEN = "undo_pick", "undo_chosen"
"""The undo picker's widget key, and the import number the editor chose in it: until they
choose, the picker shows the newest import still in effect (a new import comes first)."""


def _undo_chosen() -> None:
    st.session_state[UNDO_CHOSEN] = st.session_state.get(UNDO_PICK)


def imports_section(store_file, user: auth.User) -> None:
    """The import log (undone imports marked), and undoing one import still in effect."""
    log = store.import_log(store_file)
    if log.empty:
        st.info("No imports yet.")
        return
    shown = log.assign(status=log["undone"].replace("", "in effect"))
    columns = ["import_id", "status", "imported_at", "who", "file", "new", "updated", "unchanged"]
    st.dataframe(
        shown[columns].iloc[::-1],
        hide_index=True,
        key="imports_table",
        column_config={"status": st.column_config.TextColumn(width="medium")},
    )
    live = log[log["undone"].eq("")].iloc[::-1]
    if live.empty:
        st.caption("Every import has been undone.")
        return
    labels = {
        int(entry.import_id): f"Import {entry.import_id}: {entry.file}, "
        f"{entry.imported_at[:16].replace('T', ' ')} by {entry.who or '-'} "
        f"({entry.new:,} new, {entry.updated:,} updated)"
        for entry in live.itertuples()
    }
    chosen = st.session_state.get(UNDO_CHOSEN)
    st.session_state[UNDO_PICK] = chosen if chosen in labels else next(iter(labels))
    number = st.selectbox(
        "Import to undo (imports still in effect)",
        list(labels),
        format_func=labels.__getitem__,
        key=UNDO_PICK,
        on_change=_undo_chosen,
    )
    if st.button("Undo this import", key="undo_import"):
        try:
            confirm_signed_in()
            report = stewardship.undo_import(store_file, number, user.name)
        except ValueError as error:
            st.error(_md(error))
            return
        left = "; ".join(report.conflicts)
        _saved(
            f"{labels[number].split(' (')[0]} undone: {len(report.reverted)} put back, "
            f"{len(report.removed)} removed"
            + (f", {len(report.conflicts)} left alone (changed since): {left}" if left else ".")
        )
