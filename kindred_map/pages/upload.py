"""The upload screen: a spreadsheet's columns, constants, duplicates, report and save."""

import hashlib

import pandas as pd
import streamlit as st

from kindred_map import (
    duplicates,
    upload,
)
from kindred_map import report as reports
from kindred_map.pages import editor
from kindred_map.pages.common import LOG
from kindred_map.schema import LOCATION_PRECISIONS, project_types
from kindred_map.text import md_escape

SAVED_UPLOAD = "saved_upload"
UPLOAD_DIGEST = "upload_digest"


# An upload's work is cached by the file's SHA-256 (``digest``; the bytes themselves, ``_data``,
# are not hashed again on every rerun) and by what changes the result: the column mapping and
# constants, the store (its signature where stored projects matter), the duplicate choices.
# Resources, not data: a 100,000-row file is not pickled and copied on every rerun; read-only.
# A file that cannot be read is cached as its error, so it is not read again either.


@st.cache_resource(max_entries=4, show_spinner="Reading the file's columns...")
def upload_columns(digest: str, name: str, _data: bytes):
    try:
        return upload.upload_columns(name, _data), None
    except ValueError as error:
        return None, str(error)


@st.cache_resource(max_entries=4, show_spinner="Checking and placing every row...")
def prepared_upload(digest: str, name: str, mapping, constants, location: str, id_key: str, _data):
    # id_key: the store's id secret's fingerprint; derived ids, so the rows, depend on it
    try:
        return upload.prepare_upload(name, _data, location, dict(mapping), dict(constants)), None
    except ValueError as error:
        return None, str(error)


@st.cache_resource(max_entries=4, show_spinner="Looking for projects already stored...")
def upload_matches(digest, name, mapping, constants, signature: tuple, id_key: str, _data):
    (projects, _), _ = prepared_upload(
        digest, name, mapping, constants, signature[0], id_key, _data
    )
    return upload.upload_duplicates(projects, signature[0])


@st.cache_resource(max_entries=16, show_spinner="Counting what Save will do...")
def upload_plan(digest, name, mapping, constants, signature: tuple, id_key, choices, _data):
    (projects, report), _ = prepared_upload(
        digest, name, mapping, constants, signature[0], id_key, _data
    )
    try:
        return upload.plan_upload(projects, report, signature[0], dict(choices)), None
    except ValueError as error:
        return None, str(error)


def _digest(uploaded) -> str:
    """The uploaded file's SHA-256, worked out once per upload (kept by its file id)."""
    kept = st.session_state.get(UPLOAD_DIGEST)
    if not kept or kept[0] != uploaded.file_id:
        kept = (uploaded.file_id, hashlib.sha256(uploaded.getvalue()).hexdigest())
        st.session_state[UPLOAD_DIGEST] = kept
    return kept[1]


def upload_section(store_file, user, signature: tuple) -> None:
    st.subheader("Add projects from a spreadsheet")
    st.caption(
        "CSV or XLSX. Nothing is saved until you confirm; then the project store is updated "
        "by project id (importing the same file twice changes nothing)."
    )
    upload_templates()
    # No type=[...]: Streamlit checks a typed uploader's file name before the page runs and a
    # NUL in it became a bare error box; the page checks the name itself, and says why.
    uploaded = st.file_uploader("Project file", key="upload")
    if uploaded is None:
        return
    problem = upload.name_problem(uploaded.name)
    if problem:
        st.error(md_escape(problem))
        return
    data = uploaded.getvalue()
    digest = _digest(uploaded)
    name = upload.safe_file_name(uploaded.name)
    shown_name = md_escape(uploaded.name)
    read, error = upload_columns(digest, name, data)
    if error:
        st.error(f"{shown_name} could not be read: {md_escape(error)}")
        return
    columns, found = read
    mapping = column_mapping(columns, found, digest)
    constants = constant_fields(found, mapping, digest)
    mapping, constants = tuple(sorted(mapping.items())), tuple(sorted(constants.items()))
    id_key = upload.id_key(store_file)
    prepared, error = prepared_upload(digest, name, mapping, constants, signature[0], id_key, data)
    if error:
        st.error(f"{shown_name} could not be read: {md_escape(error)}")
        return
    if not len(prepared[0]):
        st.code(reports.to_text(prepared[1]), language=None, wrap_lines=True)
        st.warning("No row could be placed: nothing to save.")
        return
    matches = upload_matches(digest, name, mapping, constants, signature, id_key, data)
    choices, unanswered = duplicate_choices(matches, digest)
    answers = tuple(sorted(choices.items()))
    plan, error = upload_plan(digest, name, mapping, constants, signature, id_key, answers, data)
    if error:
        st.error(md_escape(error))
        return
    upload_report(plan, shown_name, name)
    upload_id = (digest, str(store_file))
    saved = st.session_state.get(SAVED_UPLOAD)
    if saved and saved[0] == upload_id:
        st.success(saved[1])
        return
    if unanswered:
        st.warning(
            f"Answer the {unanswered:,} likely duplicate(s) above before saving; until then "
            "they count as new below."
        )
    planned = upload.outcome(plan)
    st.info(upload.outcome_text(planned, done=False))
    if st.button(
        f"Save {plan.records:,} projects to the store",
        key="confirm_upload",
        disabled=bool(unanswered) or not plan.records,
    ):
        options = {"who": user.name, "choices": choices, "constants": dict(constants)}
        try:
            editor.confirm_signed_in()
            result = upload.save_upload(name, data, store_file, dict(mapping), **options)
        except ValueError as error:
            st.error(f"Not saved: {md_escape(error)}")
            return
        done = upload.outcome(result)
        message = (
            f"{upload.outcome_text(done, done=True)} Import {result.import_id}; undo it under "
            "Imports."
        )
        LOG.info("write by %r: upload %r saved: %s", user.username, name, message)
        if done != planned:  # someone changed the store in between
            message += " (The store changed since the preview, so the counts differ from it.)"
        st.session_state[SAVED_UPLOAD] = (upload_id, message)
        st.rerun()  # the map, counts and table now read the updated store


def upload_report(plan, shown_name: str, name: str) -> None:
    """The import report for the editor's current answers: the line, the text, the issues."""
    st.markdown(
        f"**Import report for {shown_name}**: {plan.rows_read:,} rows read = "
        f"{plan.imported:,} to import + {plan.rejected:,} rejected; {plan.records:,} projects"
    )
    st.code(reports.to_text(plan), language=None, wrap_lines=True)
    if len(plan.issues):
        st.dataframe(plan.issues, hide_index=True, key="upload_issues")
    st.download_button(
        "Download this report (CSV)",
        data=lambda: reports.to_csv_bytes(plan),  # made when clicked, not every run
        file_name=f"import-report-{name}.csv",
        mime="text/csv",
        on_click="ignore",
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
NOT_USED = ""
"""The mapping's "no column" option (shown as NOT_USED_LABEL; no column name is empty)."""
NOT_USED_LABEL = "(not in this file)"
OTHER_CONSTANTS = ("organisation", "sector", "parish", "opening_hours", "website", "source")
"""Fields besides type and location precision an upload may give one value for every row."""


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


def column_mapping(columns: list[str], found: dict, digest: str) -> dict[str, str]:
    """Let the editor choose which file column feeds each main field (recognised ones first).
    Widget keys carry the file's digest: one file's answers never carry over to another."""
    options = [NOT_USED, *columns]
    mapping = {}
    with st.expander("Columns: which column is which", expanded=False):
        for field in MAPPED_FIELDS:
            guess = (found.get(field) or [NOT_USED])[0]
            chosen = st.selectbox(
                field.replace("_", " ").capitalize(),
                options,
                index=options.index(guess) if guess in options else 0,
                format_func=lambda column: column or NOT_USED_LABEL,
                key=f"map_{field}_{digest[:12]}",
            )
            if chosen != NOT_USED and chosen != guess:
                mapping[field] = chosen
    return mapping


def constant_fields(found: dict, mapping: dict, digest: str) -> dict[str, str]:
    """One value for every row of fields the file has no column for: the type first ("these
    are all pantries"), the others in an expander. Returns ``{field: value}`` (blanks left
    out; `kindred_map.ingest.check_constants` checks them)."""
    fed = set(found) | set(mapping)
    constants = {}
    if "type" not in fed:
        types = project_types()
        constants["type"] = st.selectbox(
            "Type of every project in this file (it has no type column)",
            ["", *types],
            format_func=lambda kind: types[kind]["label"] if kind else "(not given: 'Other')",
            key=f"constant_type_{digest[:12]}",
            help="Without a type every row is stored as 'Other'.",
        )
    others = [name for name in (*OTHER_CONSTANTS, "location_precision") if name not in fed]
    if others:
        with st.expander("Other fields: one value for every row", expanded=False):
            st.caption("Only fields the file has no column for. Leave blank to leave them out.")
            for name in others:
                key = f"constant_{name}_{digest[:12]}"
                label = name.replace("_", " ").capitalize()
                if name == "location_precision":
                    constants[name] = st.selectbox(
                        label,
                        ["", *LOCATION_PRECISIONS],
                        format_func=lambda p: p or "(not given: from how each row is placed)",
                        key=key,
                    )
                else:
                    constants[name] = st.text_input(label, key=key)
    return {name: value for name, value in constants.items() if value.strip()}


KEEP, SKIP, MERGE = "keep both", "skip", "merge:"
"""A duplicate's answers as widget values: codes, never labels; MERGE + the stored id."""
MAX_CANDIDATES = 3
"""Stored projects offered to merge a row into (its best matches)."""


def _answer_key(digest: str, row: int) -> str:
    return f"duplicate_{digest[:12]}_{row}"


def _answer_all(matches: pd.DataFrame, digest: str, answer: str) -> None:
    """An "apply to all" button's callback: every row's answer set before the radios draw."""
    for row, (choice, stored_id) in duplicates.choices_for_all(matches, answer).items():
        st.session_state[_answer_key(digest, row)] = (
            MERGE + stored_id if choice == "merge" else choice
        )


def _option_label(candidates: pd.DataFrame):
    by_id = candidates.set_index("stored_id")

    def label(code: str) -> str:
        if code == KEEP:
            return "keep both (add it as a new project)"
        if code == SKIP:
            return "skip this row"
        match = by_id.loc[code.removeprefix(MERGE)]
        postcode = match["stored_postcode"] or "no postcode"
        retired = ", retired" if match["stored_retired"] else ""
        # Radio options are Markdown: the stored name is data, shown as typed.
        return md_escape(
            f"merge into {match['stored_name']} ({match.name}; {postcode}{retired}): {match['why']}"
        )

    return label


def duplicate_choices(matches: pd.DataFrame, digest: str) -> tuple[dict, int]:
    """Likely duplicates of the file's rows in the store, each answered merge / keep both /
    skip. A strong match (`kindred_map.duplicates.strength`) starts as "merge" (collapsed);
    a weak one, or a strong one another row also matches, is asked, with the evidence (open);
    "apply to all" buttons answer many at once. Returns the choices by file row
    (`kindred_map.storage.reconcile.apply_choices`) and how many rows are still unanswered."""
    if matches.empty:
        return {}, 0
    best = duplicates.best_matches(matches)
    defaults = duplicates.default_choices(matches)
    for row, (_, stored_id) in defaults.items():
        st.session_state.setdefault(_answer_key(digest, row), MERGE + stored_id)
    strong = best["strength"].eq("strong")
    st.warning(
        f"{len(best):,} row(s) look like projects already stored: {int(strong.sum()):,} "
        f"strong (the same name, and the same postcode or within {duplicates.NEAR_M:.0f} m) "
        f"and {int((~strong).sum()):,} weak. Strong ones are merged unless you say otherwise "
        "(a merge fills the stored project in: it never blanks a field, and moves it only to "
        "another postcode the file gives); the others need your answer."
    )
    columns = st.columns(len(duplicates.FOR_ALL))
    for column, (answer, label) in zip(columns, duplicates.FOR_ALL.items(), strict=True):
        column.button(
            label,
            key=f"all_{answer.replace(' ', '_')}_{digest[:12]}",
            on_click=_answer_all,
            args=(matches, digest, answer),
        )
    choices, unanswered = {}, 0
    groups = dict(tuple(matches.groupby("row", sort=True)))
    shared = best.loc[strong & ~best["row"].isin(defaults), "row"]
    asked = best.loc[~best["row"].isin(defaults), "row"]
    merged = best.loc[best["row"].isin(defaults), "row"]
    for rows, title, expanded in (
        (asked, f"{len(asked):,} to answer: is each the same project?", True),
        (merged, f"{len(merged):,} strong match(es): merged unless you choose otherwise", False),
    ):
        if rows.empty:
            continue
        with st.expander(title, expanded=expanded):
            for row in rows:
                candidates = groups[row].head(MAX_CANDIDATES)
                first = candidates.iloc[0]
                note = " (another row matches the same project: two rows cannot merge into one)"
                answer = st.radio(
                    md_escape(
                        f"Row {row}: {first['name']} ({first['postcode'] or 'no postcode'})"
                        + (note if row in set(shared) else "")
                    ),
                    [MERGE + i for i in candidates["stored_id"]] + [KEEP, SKIP],
                    index=None,
                    format_func=_option_label(candidates),
                    key=_answer_key(digest, row),
                )
                if answer is None:
                    unanswered += 1
                elif answer.startswith(MERGE):
                    choices[int(row)] = ("merge", answer.removeprefix(MERGE))
                else:
                    choices[int(row)] = (answer, str(first["stored_id"]))
    return choices, unanswered
