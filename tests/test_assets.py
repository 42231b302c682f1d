"""Leaflet assets are served from this machine: copied into static/, linked locally, inlinable."""

import filecmp
import json
import re

import folium
import pytest
import xstatic.pkg.leaflet as xstatic_leaflet
import xstatic.pkg.leaflet_markercluster as xstatic_markercluster
from folium.plugins import MarkerCluster

from kindred_map import assets, maps


def _served_path(static_dir, url):
    """The file under `static_dir` that Streamlit serves at `url`."""
    prefix = assets.STATIC_URL + "/"
    assert url.startswith(prefix), url
    return static_dir / url.removeprefix(prefix)


def test_install_copies_every_bundle_file(tmp_path):
    installed = assets.install_static(tmp_path)

    assert installed
    for name, bundle in assets.BUNDLES.items():
        for relative in [*bundle["js"].values(), *bundle["css"].values(), *bundle["images"]]:
            target = tmp_path / assets.VENDOR / bundle["folder"] / relative
            assert target in installed
            assert filecmp.cmp(bundle["source"] / relative, target, shallow=False), (name, target)


def test_folium_links_point_at_installed_files(tmp_path):
    assets.install_static(tmp_path)

    for name in assets.BUNDLES:
        links = assets.folium_js(name) + assets.folium_css(name)
        assert links
        for _key, url in links:
            assert _served_path(tmp_path, url).is_file(), url
    assert f"leaflet-{xstatic_leaflet.VERSION}/" in assets.folium_js("leaflet")[0][1]
    assert f"{xstatic_markercluster.VERSION}/" in assets.folium_js("markercluster")[0][1]


def test_local_links_replace_folium_cdn_links_by_name():
    assert {key for key, _ in assets.folium_js("leaflet")} <= {
        key for key, _ in folium.Map.default_js
    }
    assert {key for key, _ in assets.folium_css("markercluster")} == {
        key for key, _ in MarkerCluster.default_css
    }


def test_install_is_idempotent_and_repairs_changed_files(tmp_path):
    first = assets.install_static(tmp_path)
    inodes = {path: path.stat().st_ino for path in first}

    second = assets.install_static(tmp_path)
    assert second == first
    assert {path: path.stat().st_ino for path in second} == inodes, "files copied again"

    damaged = tmp_path / assets.VENDOR / assets.BUNDLES["leaflet"]["folder"] / "leaflet.js"
    damaged.write_text("truncated")
    assets.install_static(tmp_path)
    assert filecmp.cmp(assets.BUNDLES["leaflet"]["source"] / "leaflet.js", damaged, shallow=False)
    assert not list(tmp_path.rglob(".*.*")), "temporary copies left behind"


def test_unknown_bundle_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown asset bundle 'leafletjs'"):
        assets.folium_js("leafletjs")


def test_inline_assets_are_self_contained():
    js = assets.inline_js()
    css = assets.inline_css()

    assert xstatic_leaflet.VERSION in js
    assert "markerClusterGroup" in js
    assert ".leaflet-container" in css and ".marker-cluster" in css
    assert "images/" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", css)
    assert "data:image/png;base64," in css
    assert "@import" not in css
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css), "CSS would fetch from another host"


def test_the_dashboard_map_loads_one_file_for_its_code_and_style(tmp_path):
    """streamlit-folium loads scripts one after another: the dashboard's come in one file (the
    CSS put into the page first, then Leaflet, markercluster and dashboard.js), named by
    content, served from static/data/."""
    script_url = assets.combined_js(static_dir=tmp_path)
    assert script_url == assets.combined_js(static_dir=tmp_path), "same content, same file"
    assert script_url.endswith(".js")
    script = (tmp_path / "data" / script_url.rsplit("/", 1)[1]).read_text(encoding="utf-8")
    order = [script.find(xstatic_leaflet.VERSION), script.find("markerClusterGroup")]
    style_at = script.find(json.dumps(assets.inline_css()))
    assert -1 < style_at < order[0] < order[1] < script.find("KM.init")
    assert script.find("document.head.appendChild(style)") < order[0]
    with pytest.raises(ValueError, match="suffix"):
        assets.publish("map", b"x", tmp_path, suffix=".html")


def test_the_map_script_can_carry_its_data_files(tmp_path):
    """The map's data files inside its script (``KM.seed``, after dashboard.js defines it):
    the map then asks for no file after its code. Another content, another file name."""
    data = {"/app/static/data/layers-ward-1.json": b'{"areas":{"name":"</script>&"}}'}
    url = assets.combined_js(static_dir=tmp_path, data=data, prefix="projectmap")
    assert "/data/projectmap-" in url
    script = (tmp_path / "data" / url.rsplit("/", 1)[1]).read_text(encoding="utf-8")
    seed = 'KM.seed("/app/static/data/layers-ward-1.json", {"areas":{"name":"</script>&"}});'
    assert script.endswith(seed)
    assert script.find("KM.seed = function") < script.find(seed)
    other = {"/app/static/data/layers-ward-1.json": b'{"areas":{}}'}
    assert assets.combined_js(static_dir=tmp_path, data=other, prefix="projectmap") != url


def test_inline_assets_can_be_limited_to_leaflet():
    assert "markerClusterGroup" not in assets.inline_js(("leaflet",))
    assert ".marker-cluster" not in assets.inline_css(("leaflet",))


def _elements(element):
    yield element
    for child in element._children.values():
        yield from _elements(child)


def test_base_map_needs_nothing_from_another_host():
    fmap = maps.base_map(tiles="none", attribution=["Data <b>&</b> more"])

    links = [url for element in _elements(fmap) for _, url in getattr(element, "default_js", [])]
    links += [url for element in _elements(fmap) for _, url in getattr(element, "default_css", [])]
    page = fmap.get_root().render()

    assert links and all(url.startswith(assets.STATIC_URL + "/") for url in links), links
    assert not re.search(r"https?://", page)
    added = re.findall(r"attributionControl\.addAttribution\((\".*?\")\);", page)
    assert [json.loads(text) for text in added] == ["Data &lt;b&gt;&amp;&lt;/b&gt; more"]
