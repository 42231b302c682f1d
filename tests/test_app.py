"""The Streamlit pages without a browser (streamlit.testing AppTest): the view kept in the URL,
filters and counts, postcode search, the area panel, the table, uploads, coverage, About."""

import gc
import shutil
from pathlib import Path

import pytest
from app_runs import first_page
from streamlit.testing.v1 import AppTest

from kindred_map import abouttext, auth, importing, location, search, store, tables
from kindred_map import view as views
from kindred_map.pages import common
from kindred_map.paths import PROJECT_ROOT
from kindred_map.text import md_escape

APP = PROJECT_ROOT / "app.py"
FIXTURE = Path(__file__).parent / "fixtures" / "dashboard_projects.csv"
XSS = "<img src=x onerror=alert(1)>"
LIVERPOOL = "E08000012"
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("app") / "fixture.gpkg"
    importing.import_file(FIXTURE, path)
    return path


@pytest.fixture
def store_file(fixture_store, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the fixture store, which the app under test reads (and may write)."""
    path = tmp_path / "projects.gpkg"
    shutil.copy(fixture_store, path)
    monkeypatch.setenv(location.STORE_ENV, str(path))
    monkeypatch.setenv("KINDRED_MAP_BASEMAP", "none")
    return path


EDITOR = ("ann", "Ann Editor")
"""An editor's user name and display name (`sign_in_as`)."""


def _app(query: dict | None = None, user: auth.User | None = None) -> AppTest:
    """The dashboard run once; ``user`` signed in (as `editor.sign_in_box` would) if given."""
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    app.query_params.update(query or {})
    if user is not None:
        app.session_state["signed_in_user"] = user
    return first_page(app)


def _no_exception(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]


def _table_with(app: AppTest, column: str):
    """The first st.dataframe holding ``column`` (AppTest does not expose dataframe keys)."""
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def _listed_names(app: AppTest) -> set[str]:
    """Names in the postcode search's list (each may carry its note: "Name (note)")."""
    return {name.split(" (")[0] for name in app.table[0].value["Name"]}


def _count_text(app: AppTest) -> str:
    return next(m.value for m in app.markdown if m.value.startswith("**Showing "))


def _expected_count(store_file: Path, view: views.View) -> str:
    projects = store.read_projects(store_file)
    shown = views.shown_projects(projects, view)
    return f"**{tables.counts_text(shown, len(projects))}**"


def test_page_shows_every_project_by_default(store_file):
    app = _app()
    _no_exception(app)
    assert _count_text(app) == _expected_count(store_file, views.View())
    assert "Showing 11 of 12 projects" in _count_text(app), "the illustrative one is hidden"
    assert app.query_params == {}


def _map_args(app: AppTest) -> tuple[str, str]:
    """The st_folium element's id and arguments (the same on two runs: the map stays)."""
    (element,) = app.get("component_instance")
    return element.proto.id, element.proto.json_args


def test_a_new_session_gets_the_map_first_and_the_rest_on_the_next_run(store_file):
    """The first run: the link's view in the header and the map, no other widget (their code
    would queue before the map's); the next run (a browser's map starts it when drawn) adds
    the rest, and the map's element is the same one (it is not drawn again)."""
    query = {"boroughs": LIVERPOOL, "layer": "borough", "imd": "11"}  # 11: not a decile
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    app.query_params.update(query)
    app.run()
    _no_exception(app)
    view = views.view_from_query(query)[0]
    assert _count_text(app) == _expected_count(store_file, view)
    assert not app.multiselect and not app.selectbox and not app.text_input and not app.toggle
    assert "Loading the searches, filters and table..." in [c.value for c in app.caption]
    notices = [w.value for w in app.warning]
    assert notices and "11" in notices[0]
    first_map = _map_args(app)
    assert "layers-borough-" in first_map[1], "the link's level from the first run"
    app.run()
    _no_exception(app)
    assert app.multiselect(key="boroughs").value == [LIVERPOOL]
    assert app.selectbox(key="layer").value == "borough"
    assert app.text_input(key="postcode") is not None
    assert "Loading the searches, filters and table..." not in [c.value for c in app.caption]
    assert [w.value for w in app.warning] == notices, "shown until the page is complete"
    assert _map_args(app) == first_map
    assert app.query_params == {"boroughs": LIVERPOOL, "layer": "borough"}
    app.run()
    assert not app.warning, "then gone, as on any later run"
    assert _map_args(app) == first_map


def test_the_first_run_freezes_the_start_up_heap_once_per_process(store_file):
    """Streamlit's full collection after each run then skips what start-up loaded
    (`common.freeze_startup_heap`): the first session's first run freezes it, later runs and
    sessions do not freeze again."""
    common.freeze_startup_heap.clear()
    before = gc.get_freeze_count()
    _no_exception(_app())
    frozen = gc.get_freeze_count()
    assert frozen > before
    _no_exception(_app({"level": "deanery"}))
    assert gc.get_freeze_count() == frozen


def test_missing_store_shows_an_empty_map(store_file, tmp_path, monkeypatch):
    monkeypatch.setenv(location.STORE_ENV, str(tmp_path / "none" / "projects.gpkg"))
    app = _app()
    _no_exception(app)
    assert _count_text(app) == "**Showing 0 of 0 projects**"


def test_unreadable_store_is_an_error_not_a_crash(store_file, tmp_path, monkeypatch):
    broken = tmp_path / "broken.gpkg"
    broken.write_bytes(b"this is not a GeoPackage")
    monkeypatch.setenv(location.STORE_ENV, str(broken))
    app = _app()
    _no_exception(app)
    assert "cannot read the project store" in app.error[0].value


def test_link_sets_the_widgets_and_the_counts(store_file):
    query = {"boroughs": LIVERPOOL, "types": "pantry,church_project", "layer": "lsoa"}
    app = _app(query)
    _no_exception(app)
    assert app.multiselect(key="boroughs").value == [LIVERPOOL]
    assert app.multiselect(key="types").value == ["pantry", "church_project"]
    assert app.selectbox(key="layer").value == "lsoa"
    view = views.view_from_query(query)[0]
    assert _count_text(app) == _expected_count(store_file, view)
    assert app.query_params == query


def test_changed_filters_go_into_the_url_and_the_link_reproduces_them(store_file):
    app = _app()
    app.multiselect(key="boroughs").set_value([LIVERPOOL, "E08000015"]).run()
    app.multiselect(key="imd").set_value([1, 2]).run()
    app.selectbox(key="measure").set_value("per_10k").run()
    app.selectbox(key="distance").set_value(1200).run()
    _no_exception(app)
    expected = {
        "boroughs": f"{LIVERPOOL},E08000015",
        "imd": "1,2",
        "measure": "per_10k",
        "distance": "1200",
    }
    assert app.query_params == expected
    counts = _count_text(app)
    assert counts != _expected_count(store_file, views.View())

    reopened = _app(dict(app.query_params))
    _no_exception(reopened)
    assert _count_text(reopened) == counts
    assert reopened.multiselect(key="imd").value == [1, 2]
    assert reopened.selectbox(key="distance").value == 1200
    assert reopened.query_params == expected


def test_bad_link_values_are_reported_not_fatal(store_file):
    app = _app({"boroughs": "Atlantis", "distance": "lots"})
    _no_exception(app)
    warnings = " ".join(w.value for w in app.warning)
    assert "Atlantis" in warnings and md_escape("'lots'") in warnings
    assert app.query_params == {}


def test_postcode_search_lists_nearest_projects(store_file):
    app = _app({"postcode": "l18jq"})
    _no_exception(app)
    headline = next(m.value for m in app.markdown if "within 800 m of" in m.value)
    point = search.find_postcode("L1 8JQ")
    shown = views.shown_projects(store.read_projects(store_file), views.View())
    nearest = search.nearest_projects(shown, point, 800)
    assert headline.startswith(f"**{int(nearest['Within reach'].sum())} project(s) within 800 m")
    table = app.table[0].value
    listed = nearest.head(search.NEAREST_LIMIT)
    expected = [  # escaped (st.table cells are Markdown), each with its note
        md_escape(name) + (f" ({md_escape(note)})" if note else "")
        for name, note in zip(listed["Name"], listed["Note"], strict=True)
    ]
    assert table["Name"].tolist() == expected
    assert table["Name"].iloc[0].startswith(md_escape(XSS))  # the hostile name, escaped
    metres = table["Distance (m)"].str.replace(",", "").astype(int)  # shown as 4,278
    assert metres.is_monotonic_increasing
    assert metres.tolist() == nearest["Distance (m)"].head(search.NEAREST_LIMIT).tolist()


def test_unknown_postcode_gets_a_clear_message(store_file):
    app = _app()
    app.text_input(key="postcode").input("ZZ1 1ZZ").run()
    _no_exception(app)
    errors = [e.value for e in app.error]
    assert errors == ["Postcode ZZ1 1ZZ is not a live or terminated postcode in the region"]
    assert app.query_params == {"postcode": "ZZ1 1ZZ"}


def test_choosing_an_area_opens_its_panel_and_goes_into_the_url(store_file):
    projects = store.read_projects(store_file)
    ward = projects.loc[projects["name"] == XSS, "WD24CD"].item()
    app = _app()
    app.selectbox(key="area").set_value(ward).run()
    _no_exception(app)
    title = app.subheader[0].value
    assert (
        title.startswith("Ward: ")
        and projects.loc[projects["name"] == XSS, "WD24NM"].item() in title
    )
    names = _table_with(app, "Location")["Name"].tolist()
    assert XSS in names
    assert app.query_params == {"area": ward}
    assert _app({"area": ward}).subheader[0].value == title


def test_area_of_another_layer_resets_when_the_layer_changes(store_file):
    app = _app({"area": "E05015288"})
    app.selectbox(key="layer").set_value("borough").run()
    _no_exception(app)
    chooser = app.selectbox(key="area")
    assert chooser.value is None and chooser.proto.placeholder == "Choose a borough"
    assert chooser.label.startswith("Borough details")
    assert app.query_params == {"layer": "borough"}


def test_table_flags_stale_and_illustrative_records(store_file):
    app = _app({"examples": "1"})
    app.toggle(key="show_table").set_value(True).run()
    table = _table_with(app, "Illustrative (not real)")
    assert len(table) == 12
    assert table.loc[table["Name"] == XSS, "Check due"].item().startswith("yes")
    assert table.loc[table["Name"] == "Example Pantry", "Illustrative (not real)"].item()
    assert table.loc[table["Name"] == "Home Welcome", "Address"].item() == ""


def test_upload_shows_the_report_before_anything_is_saved(
    store_file, tmp_path, monkeypatch, sign_in_as
):
    target = tmp_path / "empty" / "projects.gpkg"
    monkeypatch.setenv(location.STORE_ENV, str(target))
    app = _app(user=sign_in_as(*EDITOR))
    app.file_uploader(key="upload").set_value(("projects.csv", FIXTURE.read_bytes(), "text/csv"))
    app.run()
    _no_exception(app)
    report = app.code[0].value
    assert "Rows read: 13 = imported 12 + rejected 1" in report
    assert "ZZ1 1ZZ" in report
    assert not target.exists(), "nothing may be saved before the user confirms"
    app.button(key="confirm_upload").click().run()
    _no_exception(app)
    assert "Saved: 12 new" in app.success[0].value
    assert len(store.read_projects(target)) == 12
    assert "Showing 11 of 12 projects" in _count_text(app)


def test_unreadable_upload_is_an_error_not_a_crash(store_file, sign_in_as):
    app = _app(user=sign_in_as(*EDITOR))
    uploaded = ("broken.xlsx", b"not a spreadsheet", "application/octet-stream")
    app.file_uploader(key="upload").set_value(uploaded).run()
    _no_exception(app)
    assert any(md_escape("broken.xlsx") + " could not be read" in e.value for e in app.error)


def test_coverage_section_shows_headline_and_ranked_gaps(store_file):
    app = _app()
    app.toggle(key="show_coverage").set_value(True).run()
    _no_exception(app)
    assert any("residents" in text.value for text in app.text)
    gaps = _table_with(app, "Rank")
    assert gaps["Rank"].tolist() == list(range(1, len(gaps) + 1))


def test_open_at_in_the_link_counts_projects_open_then_and_unknown_hours_apart(store_file):
    app = _app({"open": "weekend"})
    _no_exception(app)
    assert app.selectbox(key="open_at").value == "weekend"
    app.toggle(key="show_coverage").set_value(True).run()
    _no_exception(app)
    headline = next(t.value for t in app.text if "residents" in t.value)
    projects = store.read_projects(store_file)
    real = projects[~projects["synthetic"].fillna(False).astype(bool)]
    assert "Open weekend (any time Saturday or Sunday)" in headline
    assert f"{len(real)} with unknown hours are counted apart, not as open" in headline
    assert app.query_params == {"open": "weekend"}
    app.selectbox(key="open_at").set_value("").run()
    _no_exception(app)
    assert not any("unknown hours" in t.value for t in app.text)
    assert app.query_params == {}


def test_inside_only_switch_goes_into_the_headline_and_the_link(store_file):
    app = _app()
    app.toggle(key="show_coverage").set_value(True).run()
    app.checkbox(key="inside_only").check().run()
    _no_exception(app)
    headline = next(t.value for t in app.text if "residents" in t.value)
    assert "Only projects inside the region count" in headline
    assert app.query_params == {"inside_only": "1"}


def test_bad_open_at_in_the_link_is_a_message_not_an_error(store_file):
    app = _app({"open": "midnight {{7*7}}"})
    _no_exception(app)
    assert not app.error
    warnings = " ".join(w.value for w in app.warning)
    assert "Ignored open" in warnings and md_escape("'midnight {{7*7}}'") in warnings
    assert app.selectbox(key="open_at").value == ""
    assert app.query_params == {}


def test_gap_measure_shades_by_coverage(store_file):
    app = _app({"measure": "gap_per_1000", "area": "E05015288"})
    _no_exception(app)
    assert any("gap score" in m.value for m in app.markdown)


def _about():
    from kindred_map.pages import about

    about.about_page()


def test_about_page_lists_sources_licences_and_attribution(store_file):
    app = AppTest.from_function(_about, default_timeout=TIMEOUT_S).run()
    _no_exception(app)
    layers = app.table[0].value
    assert len(layers) == len(abouttext.ABOUT_LAYERS)
    sources = app.table[1].value
    assert sources["Projects"].sum() == len(store.read_projects(store_file))
    text = " ".join(m.value for m in app.markdown)
    assert "Office for National Statistics" in text and "OpenStreetMap" in text
    assert "Leaflet" in text


def _page_text(app: AppTest) -> str:
    """Every text the page shows in Markdown-rendering elements (and plain text ones)."""
    kinds = ("markdown", "caption", "warning", "error", "info", "success", "text", "subheader")
    return "\n".join(str(element.value) for kind in kinds for element in getattr(app, kind))


REMOTE = "http://attacker.example/pixel.png"


def test_markdown_in_a_link_is_shown_as_typed_not_rendered(store_file, sign_in_as):
    typed = f"![x]({REMOTE})"
    app = _app({"types": typed, "postcode": f"[{REMOTE}]"})
    _no_exception(app)
    warnings = [w.value for w in app.warning]
    assert any(md_escape(typed) in w for w in warnings), warnings
    assert "](http" not in _page_text(app) and "http://" not in _page_text(app)


def test_upload_with_a_hostile_long_name_is_shown_as_typed(store_file, sign_in_as):
    name = "[win](http://attacker.example/) " + "x" * 300 + ".csv"
    app = _app(user=sign_in_as(*EDITOR))
    app.file_uploader(key="upload").set_value((name, FIXTURE.read_bytes(), "text/csv")).run()
    _no_exception(app)
    headline = next(m.value for m in app.markdown if m.value.startswith("**Import report"))
    assert md_escape(name) in headline and "](http" not in headline
    assert str(store_file) not in _page_text(app), "no server path in the page"
    assert str(store_file.parent) not in _page_text(app)


def test_name_search_selects_a_project_and_keeps_it_in_the_link(store_file):
    app = _app()
    app.text_input(key="name_query").input("WARM space").run()
    _no_exception(app)
    found = app.selectbox(key="project")
    names = [option.split(" (")[0] for option in found.options]
    assert names == ["City Centre Warm Space", "Halton Warm Space", "Wigan Warm Space"]
    assert found.value is None, "nothing chosen until the user chooses"
    found.set_value("dashboard-projects:dash-05").run()
    _no_exception(app)
    assert app.query_params["project"] == "dashboard-projects:dash-05"
    assert any(m.value == "**Wigan Warm Space**" for m in app.markdown)
    reopened = _app({"project": "dashboard-projects:dash-05"})
    _no_exception(reopened)
    assert reopened.selectbox(key="project").value == "dashboard-projects:dash-05"
    assert any(m.value == "**Wigan Warm Space**" for m in reopened.markdown)


def test_illustrative_examples_are_left_out_until_shown(store_file):
    app = _app({"postcode": "L8 0AB"})
    app.toggle(key="show_table").set_value(True).run()
    _no_exception(app)
    assert "Example Pantry" not in set(_table_with(app, "Location")["Name"])
    assert md_escape("Example Pantry") not in _listed_names(app)
    app.toggle(key="examples").set_value(True).run()
    _no_exception(app)
    assert "Example Pantry" in set(_table_with(app, "Location")["Name"])
    assert md_escape("Example Pantry") in _listed_names(app)
    assert app.query_params["examples"] == "1"


def test_an_unexpected_error_is_a_short_message_and_a_log_line(store_file, monkeypatch, caplog):
    def broken(*_args):
        raise RuntimeError("/srv/secret/place exploded")

    monkeypatch.setattr(tables, "counts_text", broken)
    app = _app()
    assert not app.exception, "no traceback element"
    assert any(e.value.startswith("Sorry, something went wrong") for e in app.error)
    assert "/srv/secret" not in _page_text(app)
    assert "/srv/secret/place exploded" in caplog.text


def test_store_path_is_not_shown_when_the_store_is_broken(store_file, tmp_path, monkeypatch):
    broken = tmp_path / "private-folder" / "broken.gpkg"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not a GeoPackage")
    monkeypatch.setenv(location.STORE_ENV, str(broken))
    app = _app()
    _no_exception(app)
    assert app.error and "private-folder" not in _page_text(app)


def test_about_page_shows_source_names_from_files_as_typed(tmp_path, monkeypatch):
    hostile = "![x](http://attacker.example/p.png) partner list"
    csv = FIXTURE.read_text(encoding="utf-8").replace("Dashboard test fixture", hostile)
    source_file = tmp_path / "hostile.csv"
    source_file.write_text(csv, encoding="utf-8")
    path = tmp_path / "projects.gpkg"
    importing.import_file(source_file, path)
    monkeypatch.setenv(location.STORE_ENV, str(path))
    app = AppTest.from_function(_about, default_timeout=TIMEOUT_S).run()
    _no_exception(app)
    sources = app.table[1].value["Source"].tolist()
    assert md_escape(hostile) in sources, sources
    assert hostile not in sources


def test_about_page_shows_a_layers_source_and_attribution_as_typed(store_file, monkeypatch):
    """`replace-layer --source` and `--attribution` text is data: an image in it was fetched on
    every visit to the About page."""
    from kindred_map import boundaries

    image = "![x](http://127.0.0.1:9/pixel.png) **ONS**"
    real = boundaries.metadata

    def hostile(name, *args, **kwargs):
        meta = real(name, *args, **kwargs)
        return meta | {"source": image, "attribution": [image]} if name == "ward" else meta

    monkeypatch.setattr(boundaries, "metadata", hostile)
    app = AppTest.from_function(_about, default_timeout=TIMEOUT_S).run()
    _no_exception(app)
    assert md_escape(image) in app.table[0].value["Source"].tolist()
    assert image not in app.table[0].value["Source"].tolist()
    credits = next(m.value for m in app.markdown if "Leaflet" in m.value)
    assert f"- {md_escape(image)}" in credits.splitlines()
    assert "](http" not in " ".join(str(t.value.to_numpy()) for t in app.table) + credits


def test_an_upload_named_with_a_nul_byte_or_another_type_is_refused_with_a_reason(
    store_file, sign_in_as
):
    app = _app(user=sign_in_as(*EDITOR))
    for name, reason in (
        ("partner\x00list.csv", "holds a NUL byte"),
        ("partner.exe", "is not a CSV or XLSX file"),
    ):
        app.file_uploader(key="upload").set_value((name, FIXTURE.read_bytes(), "text/csv")).run()
        _no_exception(app)
        assert any(reason in error.value.replace("\\", "") for error in app.error), name
    assert len(store.read_projects(store_file)) == 12


def test_column_headers_in_an_upload_message_are_shown_as_typed(store_file, sign_in_as):
    header = "[click](http://attacker.example/)"
    data = f"{header},**bold**\n1,2\n".encode()
    app = _app(user=sign_in_as(*EDITOR))
    app.file_uploader(key="upload").set_value(("cols.csv", data, "text/csv")).run()
    _no_exception(app)
    message = next(e.value for e in app.error if "could not be read" in e.value)
    assert md_escape(header) in message and md_escape("**bold**") in message
    assert "](http" not in message and "**bold**" not in message


def test_a_linked_reach_distance_stays_on_offer(store_file):
    app = _app({"distance": "850"})
    _no_exception(app)
    chooser = app.selectbox(key="distance")
    linked = views.distance_label(850)
    assert chooser.value == 850 and linked in chooser.options
    chooser.set_value(1200).run()
    _no_exception(app)
    assert app.query_params["distance"] == "1200"
    assert linked in app.selectbox(key="distance").options  # the same list all session
