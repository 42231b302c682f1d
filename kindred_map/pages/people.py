"""The dashboard's access controls: the private map's sign-in page and the admins' People section.

Streamlit code only (it reuses the sign-in of `kindred_map.pages.editor`); the rules are in
`kindred_map.roles`, the changes and their audit table in `kindred_map.people`."""

import pandas as pd
import streamlit as st

from kindred_map import auth, people, roles
from kindred_map.pages import editor
from kindred_map.text import md_escape

PEOPLE_PICK = "people_pick"
ACCOUNT_PICK = "account_pick"


def gate() -> bool:
    """True when this visitor may see the map. On a private map (`roles`) a visitor who has
    not signed in, or whose account the roles file does not allow, gets the sign-in page
    instead (and an account that is not allowed is told so, with a way to sign out)."""
    try:
        public = roles.read_rules()["public"]
    except ValueError as error:  # an unreadable roles file shows nothing: default-deny
        st.error(md_escape(error))
        return False
    if public or editor.signed_in() is not None:
        return True
    st.title("Kindred Map", anchor=False)
    claims = editor.provider_claims()
    if claims:
        st.error(md_escape(roles.NOT_ALLOWED.format(email=roles.email_of(claims) or "no e-mail")))
        if st.button("Sign out", key="gate_sign_out"):
            st.logout()
        return False
    st.write("This map is for the organisation's staff: sign in to see it.")
    editor.sign_in_controls("gate_sign_in")
    return False


def _md(text) -> str:
    return md_escape(str(text))


def _change(action, done: str) -> None:
    """Run one change of people (as the admin signed in now), then report and redraw."""
    try:
        admin = editor.confirm_signed_in()
        if not admin.can("users"):
            raise ValueError("only admins may change who signs in")
        action(admin.username)
    except ValueError as error:
        st.error(_md(error))
        return
    st.session_state[editor.DONE] = done
    st.rerun()


def people_section(user: auth.User) -> None:
    """For admins: who may sign in with the organisation's account and as what, password
    accounts, the map's public or private setting, and the audit table of every change."""
    st.header("People")
    rules = roles.read_rules()
    st.write(
        "The map is **public**: anyone may view it without signing in."
        if rules["public"]
        else "The map is **private**: only people the rules below allow may view it."
    )
    entries = [
        {"e-mail or domain": subject, "role": role}
        for table in ("people", "domains")
        for subject, role in sorted(rules[table].items())
    ]
    st.subheader("Organisation accounts")
    st.caption(
        "A person's own entry wins over their domain's. Changes take effect at each person's "
        "next click; a removed editor's next change is refused."
    )
    st.dataframe(pd.DataFrame(entries, columns=["e-mail or domain", "role"]), hide_index=True)
    with st.form("grant_form", clear_on_submit=True):
        subject = st.text_input(
            "E-mail address or domain", max_chars=roles.MAX_SUBJECT_CHARS, key="grant_subject"
        )
        role = st.selectbox("Role", roles.ROLES, index=1, key="grant_role")
        if st.form_submit_button("Add or change"):
            _change(
                lambda by: people.grant(subject, role, by),
                f"{subject.strip().lower()} is now {role}.",
            )
    subjects = [entry["e-mail or domain"] for entry in entries]
    if subjects:
        picked = st.selectbox("Entry to remove", subjects, key=PEOPLE_PICK)
        if st.button("Remove", key="revoke_entry"):
            _change(lambda by: people.revoke(picked, by), f"Removed {picked}.")
    accounts_section()
    st.subheader("Changes")
    log = people.audit_log()
    st.dataframe(pd.DataFrame(log, columns=people.AUDIT_COLUMNS), hide_index=True)


def accounts_section() -> None:
    """Password accounts: change a role or remove one (adding one, with its password, is done
    on the server with ``kindred-map users add``, so no password is typed for someone else)."""
    st.subheader("Password accounts")
    accounts = auth.list_users()
    if not accounts:
        st.caption("None. Add one on the server with: kindred-map users add NAME")
        return
    names = {account.username: account for account in accounts}
    st.dataframe(
        pd.DataFrame(
            [(a.username, a.name, a.role) for a in accounts], columns=["user", "name", "role"]
        ),
        hide_index=True,
    )
    picked = st.selectbox(
        "Account",
        list(names),
        format_func=lambda name: f"{names[name].name} ({name}, {names[name].role})",
        key=ACCOUNT_PICK,
    )
    role_column, remove_column = st.columns(2)
    new_role = role_column.selectbox("New role", auth.ROLES, key="account_role")
    if role_column.button("Change role", key="account_set_role"):
        _change(
            lambda by: people.set_account_role(picked, new_role, by),
            f"{picked} is now {new_role}; they sign in again.",
        )
    if remove_column.button("Remove account", key="account_remove"):
        _change(lambda by: people.remove_account(picked, by), f"Removed the account {picked}.")
