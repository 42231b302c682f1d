"""The dashboard map of a view: shaded areas, clicks, markers, local assets, basemap."""

import html
import json
import re
from datetime import date

import pandas as pd
import pytest
import shapely

from kindred_map import (
    assets,
    boundaries,
    coverage,
    figures,
    hours,
    importing,
    maps,
    mapview,
    store,
)
from kindred_map import view as views

XSS = "<img src=x onerror=alert(1)>"
TODAY = date(2025, 11, 1)
LIVERPOOL = "E08000012"


def test_a_click_opens_an_area_of_the_shown_layer_only():
    ward = next(iter(figures.area_choices("ward")))
    clicked = {"type": "Feature", "properties": {"code": ward, "level": "ward"}}
    assert mapview.area_from_click(clicked, "ward") == ward
    assert mapview.area_from_click(clicked, "borough") is None
    marker = {"type": "Feature", "properties": {}, "geometry": {"type": "Point"}}
    assert mapview.area_from_click(marker, "ward") is None
    assert mapview.area_from_click(None, "ward") is None
    unknown = {"properties": {"code": "E05999999", "level": "ward"}}
    assert mapview.area_from_click(unknown, "ward") is None


def _render(fmap) -> str:
    return fmap.get_root().render()


def _static(url: str):
    """A data file the map fetches, read from static/ as Streamlit would serve it."""
    relative = url.removeprefix(assets.STATIC_URL + "/")
    return json.loads((assets.STATIC_DIR / relative).read_text(encoding="utf-8"))


def _payload(page: str) -> dict:
    return json.loads(re.search(r"KM\.apply\([^,]+, (\{.*?\})\);\n", page, re.DOTALL).group(1))


def _options(page: str) -> dict:
    return json.loads(re.search(r"KM\.init\([^,]+, (\{.*?\})\);\n", page, re.DOTALL).group(1))


def test_map_uses_local_assets_only_and_hides_home_run_positions(projects, by_name):
    view = views.View(postcode="L1 8JQ", clusters=True, gaps=True, layer="lsoa", examples=True)
    page = _render(mapview.build_map(projects, view, today=TODAY, tiles="none"))
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    local = ("/app/static/vendor/", "/app/static/data/projectmap-")  # the map's one file
    assert sources and all(s.startswith(local) for s in sources), sources
    (script,) = [source for source in sources if source.startswith(local[1])]
    code = (assets.STATIC_DIR / script.removeprefix(assets.STATIC_URL + "/")).read_text()
    for host in ("cdn", "unpkg", "d3js", "googleapis", "bootstrap", "jquery"):
        assert host not in page.lower().replace("bootstrap-", "")
    options = _options(page)
    files = [options["projectsUrl"], *options["popupUrls"], options["layersUrl"]]
    assert all(url.startswith("/app/static/data/") for url in files)
    served = page + code + "".join(json.dumps(_static(url)) for url in files)
    for url in (options["projectsUrl"], options["layersUrl"]):  # inside the map's file
        assert f"KM.seed({json.dumps(url)}, " in code
    home = by_name(projects, "Home Welcome")
    lat, lon = round(home["lat"], 5), round(home["lon"], 5)
    markers = _static(options["projectsUrl"])
    assert lat not in markers["lat"] and lon not in markers["lon"]
    for secret in (f"[{lon},{lat}]", f"[{lon}, {lat}]", "Private Road", "L20 0AD"):
        assert secret not in served
    assert html.escape(XSS) in markers["name"] and XSS not in served


def test_payload_colours_the_areas_in_view_and_lists_the_shown_projects(projects):
    view = views.View(boroughs=(LIVERPOOL,), measure="imd_decile")
    shown = views.shown_projects(projects, view)
    page = _render(mapview.build_map(projects, view, today=TODAY, tiles="none"))
    payload, options = _payload(page), _options(page)
    markers = _static(options["projectsUrl"])
    drawn = [i for start, stop in payload["shown"] for i in range(start, stop)]
    assert len(drawn) == len(shown) and len(markers["lat"]) == len(projects)
    assert sorted(markers["lat"][i] for i in drawn) == sorted(shown.geometry.y.round(5))
    wards = figures.areas_in_view("ward", view)
    order = mapview.area_order("ward")
    coloured = {order[i] for i, fill in enumerate(payload["fill"]) if fill >= 0}
    assert coloured == set(wards)
    areas = _static(options["layersUrl"])["areas"]["features"]
    assert [f["properties"]["code"] for f in areas] == list(order)
    assert {f["properties"]["level"] for f in areas} == {"ward"}
    assert "Red = most deprived" in payload["legend"]
    assert len(page.encode()) < 40_000, "no geometry, popup or marker in the page itself"


def test_choosing_an_area_highlights_it_and_fits_the_map_once(projects):
    ward = figures.areas_in_view("ward", views.View(boroughs=(LIVERPOOL,)))[0]
    files = mapview.project_files(projects, TODAY)
    payload = mapview.view_payload(projects, views.View(area=ward), files)
    assert payload["area"] == ward and payload["fit"]["key"].endswith(ward)
    assert mapview.view_payload(projects, views.View(), files)["fit"] is None


def test_clusters_with_every_type_draw_hulls(projects):
    """/?clusters=1 once crashed with KeyError 'synthetic' (illustrative counts)."""
    files = mapview.project_files(projects, TODAY)
    for examples in (False, True):
        view = views.View(clusters=True, eps=5_000, min_samples=3, examples=examples)
        overlay = mapview.view_payload(projects, view, files)["overlays"][0]
        hulls = overlay["geojson"]["features"]
        assert hulls and all("projects:" in hull["properties"]["summary"] for hull in hulls)


TEMPLATE_PAYLOADS = (
    "Hall {{7*7}} marker",
    "Room {#3} Hall",
    "{% raw %}",
    "</script><script>document.title='owned'</script>",
    "{{ cycler.__init__.__globals__.os.mkdir(CANARY) }}",
)
"""Project text that Jinja would run or choke on, or that would close the script element."""
TEXT_FIELDS = ("name", "organisation", "address", "website", "source", "opening_hours", "parish")


def test_template_payloads_in_every_text_field_are_shown_as_typed(tmp_path):
    canary = tmp_path / "ran"
    payloads = [text.replace("CANARY", repr(str(canary))) for text in TEMPLATE_PAYLOADS]
    rows = []
    for index, text in enumerate(payloads):
        row = {field: f"{field} {text}" for field in TEXT_FIELDS}
        rows.append(row | {"id": f"t-{index}", "type": "warm_space", "postcode": "L1 8JQ"})
    source = tmp_path / "hostile.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    path = tmp_path / "projects.gpkg"
    importing.import_file(source, path)
    hostile = store.read_projects(path)
    assert len(hostile) == len(payloads)
    for view in (views.View(), views.View(clusters=True, min_samples=3, eps=500, gaps=True)):
        page = _render(mapview.build_map(hostile, view, today=TODAY, tiles="none"))
        assert not canary.exists(), "project text ran as a template"
        assert "Hall 49 marker" not in page and "{{" not in page.split("<script>", 1)[-1]
        assert "</script><script>document" not in page
        options = _options(page)
        names = [html.unescape(n) for n in _static(options["projectsUrl"])["name"]]
        assert sorted(names) == sorted(f"name {text}" for text in payloads)
        popups_ = "".join(text for url in options["popupUrls"] for text in _static(url))
        for field in ("organisation", "address", "opening_hours", "parish"):
            for text in payloads:
                assert maps.html_text(f"{field} {text}") in popups_
        assert _payload(page)["legend"].count("Warm space") == 1


def test_safe_json_is_the_same_data_with_no_template_or_script_syntax():
    data = {"a{{b}}": ["{% raw %}", "{#3}", "</script>", 1.5, None, True], "n": {"x": "%}#'&"}}
    text = maps.safe_json(data)
    assert json.loads(text) == data
    for syntax in ("{{", "{%", "{#", "<", ">", "&", "'"):
        assert syntax not in text


def test_gap_measure_needs_coverage(projects):
    view = views.View(measure="gap_score")
    with pytest.raises(ValueError, match="coverage"):
        mapview.build_map(projects, view, tiles="none")
    summary = figures.coverage_summary(projects, (), view.distance)
    page = _render(mapview.build_map(projects, view, coverage_areas=summary["areas"]))
    assert "Gap score" in _payload(page)["legend"] and "more is worse" in _payload(page)["legend"]


def test_basemap_choice_reaches_the_map(projects):
    online = _render(mapview.build_map(projects, views.View(), tiles="osm"))
    offline = _render(mapview.build_map(projects, views.View(), tiles="none"))
    assert "tile.openstreetmap.org" in online
    assert "tile.openstreetmap.org" not in offline
    assert '"maxZoom": 18' in offline  # marker clustering needs it when no tiles give one
    places = _static(_options(offline)["layersUrl"])["places"]
    kinds = {place["kind"] for place in places}
    assert kinds == {"town", "suburb"} and {"Bootle", "Birkenhead"} <= {p["name"] for p in places}


def test_open_at_limits_the_beyond_reach_layer_and_popups_carry_described_hours(projects):
    """Only projects open then draw a reach circle (unknown hours never count as open), and the
    popup files the map fetches hold the described hours, escaped."""
    saturday = hours.dumps([hours.schedule("SA", "10:00", "12:00", note=XSS)])
    real = projects[~projects["synthetic"].fillna(False).astype(bool)]
    first = real["id"].iloc[0]
    timed = projects.assign(schedules=projects["id"].map({first: saturday}).fillna(""))
    weekend = mapview.gap_overlay(timed, views.View(gaps=True, open_at="weekend"))
    evening = mapview.gap_overlay(timed, views.View(gaps=True, open_at="evening"))
    any_time = mapview.gap_overlay(timed, views.View(gaps=True))
    alone = coverage.gap_surface(timed[timed["id"] == first])
    nobody = coverage.gap_surface(timed.iloc[:0])
    area = [
        round(shapely.geometry.shape(overlay["geojson"]["features"][0]["geometry"]).area, 6)
        for overlay in (weekend, evening, any_time)
    ]
    assert area[0] == round(alone.geometry.iloc[0].area, 6)
    assert area[1] == round(nobody.geometry.iloc[0].area, 6) > area[0] > area[2]
    assert "open weekend" in weekend["geojson"]["features"][0]["properties"]["note"]
    files = mapview.project_files(timed, TODAY)
    served = "".join(json.dumps(_static(url)) for url in files["popups"])
    described = html.escape(hours.describe(saturday))
    assert json.dumps(f"Opening hours: {described}")[1:-1] in served
    assert XSS not in served and "hours unknown" in served


def test_the_dashboards_cached_parts_give_the_same_payload(projects):
    """The dashboard masks the store once (``masked``) and adds the postcode search to a payload
    cached without it (`mapview.with_search`): the result is the payload built in one go."""
    from kindred_map import privacy

    files = mapview.project_files(projects, TODAY)
    masked = privacy.public_records(projects)
    ward = figures.areas_in_view("ward", views.View(boroughs=(LIVERPOOL,)))[0]
    for view in (
        views.View(postcode="L1 8JQ", distance=1200),
        views.View(postcode="L1 8JQ", area=ward),
        views.View(postcode="NOT A POSTCODE", boroughs=(LIVERPOOL,)),
        views.View(types=("pantry",), imd=(1, 2)),
    ):
        whole = mapview.view_payload(projects, view, files)
        unsearched = mapview.view_payload(
            projects, views.View(**(vars(view) | {"postcode": ""})), files, masked=masked
        )
        assert mapview.with_search(unsearched, view) == whole
    searched = mapview.view_payload(projects, views.View(postcode="L1 8JQ"), files)
    assert searched["search"]["radius_m"] == 800 and searched["fit"]["key"].startswith("search:")


def test_the_masked_store_given_once_gives_the_same_files_and_overlays(projects, monkeypatch):
    """Given the masked store (`privacy.public_records`, as the dashboard keeps it), the map
    files and a view's payload with its gap and cluster layers are what they are without it,
    and the store is not masked again for them."""
    from kindred_map import privacy

    masked = privacy.public_records(projects)
    view = views.View(gaps=True, clusters=True, eps=5_000)
    files = mapview.project_files(projects, TODAY)
    whole = mapview.view_payload(projects, view, files)
    alone = [mapview.gap_overlay(projects, view), mapview.cluster_overlay(projects, view)]
    assert whole["overlays"] == alone and all(o["geojson"]["features"] for o in alone)
    masking = []
    real = privacy.public_records

    def counted(*args, **kwargs):
        masking.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(privacy, "public_records", counted)
    given = mapview.project_files(projects, TODAY, masked)
    assert given["projects_json"] == files["projects_json"] and given["order"].equals(
        files["order"]
    )
    assert given["popups"] == files["popups"]
    assert mapview.view_payload(projects, view, given, masked=masked) == whole
    assert masking == []


def test_place_labels_come_towns_first_then_by_the_residents_nearest_them():
    records = mapview.place_records()
    places = boundaries.load("place")
    assert len(records) == len(places)  # none lost: dashboard.js drops labels, not this
    kinds = [record["kind"] for record in records]
    towns = kinds.count("town")
    assert set(kinds[:towns]) == {"town"} and "town" not in kinds[towns:]
    residents = mapview.place_residents()
    lats, lons = places.geometry.y.round(4), places.geometry.x.round(4)
    keys = zip(places["name"], lats, lons, strict=True)
    by_place = dict(zip(keys, residents, strict=True))  # a name may be in two boroughs
    ranked = [by_place[(record["name"], record["lat"], record["lon"])] for record in records]
    assert ranked[:towns] == sorted(ranked[:towns], reverse=True)
    assert ranked[towns:] == sorted(ranked[towns:], reverse=True)
    # Each postcode's residents go to one town (and to one place of either kind): the towns'
    # shares add up to the region's residents, as the suburbs' and towns' together do.
    region = boundaries.region_postcodes(boundaries.load("postcode"))["residents"].sum()
    is_town = (places["kind"] == "town").to_numpy()
    assert residents[is_town].sum() == region
    assert records[0]["name"] == "Liverpool"


def test_the_page_writes_its_map_files_again_after_another_store_write_removed_them(
    projects, monkeypatch
):
    from kindred_map.pages import map as map_page

    monkeypatch.setattr(map_page, "load_projects", lambda signature: projects)
    signature = ("test-map-files-removed", len(projects))
    files = map_page.map_files(signature, TODAY)
    assert mapview.project_files_served(files)
    assert store.forget_published_positions()  # another store's import on this install
    assert not mapview.project_files_served(files)
    again = map_page.map_files(signature, TODAY)
    assert mapview.project_files_served(again)
    assert again["projects"] == files["projects"] and again["popups"] == files["popups"]
    with pytest.raises(ValueError, match="not a URL publish gives"):
        assets.is_published(assets.static_url("leaflet", "leaflet.js"))
