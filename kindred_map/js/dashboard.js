/* Kindred Map dashboard map (Leaflet). Geometry, places, project positions and popups come
   from static JSON files fetched once; each view sends one small JSON payload (KM.apply). No
   data ever passes through a template: text arrives as JSON and goes in as text or as HTML
   escaped by the server. */
(function () {
  "use strict";
  var KM = (window.KM = window.KM || {});
  var fetches = {};
  var state = {};

  function fetchJson(url) {
    if (!fetches[url]) {
      fetches[url] = fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok) { throw new Error(url + ": " + response.status); }
        return response.json();
      });
    }
    return fetches[url];
  }

  function narrow() {
    /* The page's width, not the map frame's: controls fold on phones, not beside a sidebar. */
    var width;
    try { width = window.parent.innerWidth; } catch (error) { width = window.innerWidth; }
    return width < 800;
  }

  function element(parent, tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    if (parent) { parent.appendChild(node); }
    return node;
  }

  /* --- height: the map follows the browser window, not a fixed 640 px --- */
  function fitHeight() {
    /* The map fills the window below where it starts (at least 360 px), so that on arrival it
       is wholly in view with the title above it. */
    var map = state.map, wanted;
    try {
      var top = window.frameElement.getBoundingClientRect().top + window.parent.scrollY;
      wanted = window.parent.innerHeight - Math.min(top, state.opts.heightMargin) - 16;
    } catch (error) { wanted = window.innerHeight; }
    wanted = Math.max(360, Math.min(Math.round(wanted), 1100));
    var box = map.getContainer();
    if (window.Streamlit && window.Streamlit.setFrameHeight) {
      window.Streamlit.setFrameHeight(wanted);
    }
    if (Math.abs(box.clientHeight - wanted) > 1) {
      box.style.height = wanted + "px";
      map.invalidateSize();
    }
  }

  /* --- fit bounds clear of the controls (legend, layer control, attribution) --- */
  function cornerSize(selector) {
    var node = state.map.getContainer().querySelector(selector);
    if (!node) { return { w: 0, h: 0 }; }
    var rect = node.getBoundingClientRect();
    return { w: rect.width, h: rect.height };
  }

  var FIT_MIN_PX = 120;  /* the least room, after the controls, that a fit may count on */

  function whenSized(action) {
    /* A map not laid out yet (its frame 0 px or a sliver wide or high, as happens on a busy
       page) would fit any bounds at its greatest zoom, and that place would then be kept:
       wait until it has room. */
    var map = state.map;
    map.invalidateSize();
    var size = map.getSize();
    if (size.x >= FIT_MIN_PX && size.y >= FIT_MIN_PX) { action(); return; }
    window.requestAnimationFrame(function () { whenSized(action); });
  }

  function fitClear(bounds, maxZoom) {
    whenSized(function () { fitNow(bounds, maxZoom); });
  }

  function fitNow(bounds, maxZoom) {
    var map = state.map, margin = 24, best = null;
    var tl = cornerSize(".leaflet-top.leaflet-left"), tr = cornerSize(".leaflet-top.leaflet-right");
    var bottom = Math.max(cornerSize(".leaflet-bottom.leaflet-right").h,
      cornerSize(".leaflet-bottom.leaflet-left").h);
    [[true, true], [true, false], [false, true], [false, false]].forEach(function (choice) {
      var left = margin + (choice[0] ? tl.w : 0), right = margin + (choice[1] ? tr.w : 0);
      var top = margin + Math.max(choice[0] ? 0 : tl.h, choice[1] ? 0 : tr.h);
      var pad = L.point(left + right, top + margin + bottom);
      var room = map.getSize().subtract(pad);
      if (room.x < FIT_MIN_PX || room.y < FIT_MIN_PX) { return; }  /* controls fill it */
      var zoom = map.getBoundsZoom(bounds, false, pad);
      if (!best || zoom > best.zoom) {
        best = { zoom: zoom, topLeft: [left, top], bottomRight: [right, margin + bottom] };
      }
    });
    best = best || { topLeft: [margin, margin], bottomRight: [margin, margin] };
    map.fitBounds(bounds, {
      paddingTopLeft: best.topLeft, paddingBottomRight: best.bottomRight,
      maxZoom: maxZoom || state.opts.maxFitZoom, animate: false
    });
  }

  /* --- reports to the page: none until someone moves or clicks the map --- */
  function quietUntilTouched(map) {
    /* streamlit-folium reports the map's place (its center and zoom, kept in the link) after
       every move, the first placement included. That first one is a fit the view already
       implies (a link without a place opens on the same fit), and its report would rerun the
       page's map while the map is still fetching its layers: reports wait for a pointer,
       wheel or key on the map. window.Streamlit is streamlit-folium's component API. */
    var api = window.Streamlit;
    if (api && api.setComponentValue && !api.kmQuiet) {
      var send = api.setComponentValue.bind(api);
      api.setComponentValue = function (value) { if (state.touched) { send(value); } };
      api.kmQuiet = true;
    }
    ["pointerdown", "wheel", "keydown", "touchstart"].forEach(function (name) {
      map.getContainer().addEventListener(name, function () { state.touched = true; },
        { capture: true, passive: true });
    });
  }

  /* --- the shaded areas --- */
  function areaStyle(feature) {
    var p = state.payload, index = feature.properties.index, fill = null;
    if (p && p.fill) { fill = p.fill[index]; }
    var selected = p && p.area && feature.properties.code === p.area;
    if (fill === null || fill === undefined || fill < 0) {
      return { stroke: false, fill: false };
    }
    var style = {
      color: state.opts.areaStyle.color, weight: state.opts.areaStyle.weight,
      fillOpacity: state.opts.areaStyle.fillOpacity, fillColor: p.palette[fill], fill: true,
      stroke: true, dashArray: null
    };
    if (selected) {
      style.color = state.opts.selectedStyle.color;
      style.weight = state.opts.selectedStyle.weight;
    }
    return style;
  }

  function areaTooltip(layer) {
    var p = state.payload, props = layer.feature.properties, box = element(null, "div");
    var rows = [[state.opts.noun, props.name]];
    if (p && p.values) {
      rows.push([p.valueLabel, p.values[props.index]]);
      if (p.counts) { rows.push(["Projects shown", p.counts[props.index]]); }
    }
    rows.push(["Population (Census 2021)", props.population]);
    rows.push([state.opts.imdLabel, props.imd]);
    if (props.note) { rows.push(["Boundary", props.note]); }
    var table = element(box, "table");
    rows.forEach(function (row) {
      var tr = element(table, "tr");
      element(tr, "th", null, row[0]);
      element(tr, "td", null, row[1] === undefined || row[1] === null ? "" : String(row[1]));
    });
    return box;
  }

  function keyboardFree(layer) {
    /* Shapes are not in the tab order: the area chooser beside the map is the keyboard route. */
    var path = layer.getElement && layer.getElement();
    if (path) { path.setAttribute("tabindex", "-1"); path.setAttribute("focusable", "false"); }
  }

  /* --- place labels: towns from zoom 9, suburbs and villages from zoom 11.5 --- */
  function drawPlaces(places) {
    state.unlabelled = {};
    places.forEach(function (place) {
      (state.unlabelled[place.kind] = state.unlabelled[place.kind] || []).push(place);
    });
    showPlaces();
  }

  function label(place) {
    var made = L.tooltip({
      permanent: true, direction: "center", interactive: false, pane: "kmPlaces",
      className: "km-place km-place-" + place.kind
    }).setLatLng([place.lat, place.lon]).setContent(element(null, "span", null, place.name));
    state.places.addLayer(made);
  }

  function showPlaces() {
    /* A kind's labels are made when its zoom is first reached: 500 suburb labels, placed
       again on every zoom while hidden, cost the first map tens of milliseconds for nothing. */
    var zoom = state.map.getZoom(), pane = state.map.getPane("kmPlaces");
    var zooms = state.opts.placeZooms, waiting = state.unlabelled || {};
    Object.keys(zooms).forEach(function (kind) {
      var shown = zoom >= zooms[kind];
      if (shown && waiting[kind]) { waiting[kind].forEach(label); waiting[kind] = null; }
      pane.classList.toggle("km-show-" + kind + "s", shown);  /* km-show-towns, ...-suburbs */
    });
  }

  /* --- projects: circles, grouped by markercluster, popups fetched on demand --- */
  function popupFor(index) {
    var chunk = Math.floor(index / state.opts.popupChunk);
    return fetchJson(state.opts.popupUrls[chunk]).then(function (texts) {
      return texts[index - chunk * state.opts.popupChunk];
    });
  }

  function marker(index) {
    var made = state.markerCache[index];
    if (made) { return made; }
    var data = state.projects, kind = data.type[index];
    /* A project outside the region: a hollow ring in its type's colour (it counts for reach
       only, in no area), so it never reads as one of the region's. */
    var outside = data.outside && data.outside[index];
    made = L.circleMarker([data.lat[index], data.lon[index]], {
      pane: "kmProjects", radius: state.opts.radius,
      color: outside ? data.colours[kind] : state.opts.outline,
      weight: outside ? 3 : 1.2, fillColor: outside ? "#ffffff" : data.colours[kind],
      fillOpacity: outside ? 0.6 : 0.92, dashArray: data.home[index] ? "3 2" : null
    });
    made.kmIndex = index;
    made.on("add", function () { keyboardFree(made); });
    made.bindTooltip(data.name[index]);
    made.bindPopup(state.opts.loading, state.popupOptions);
    made.on("popupopen", function (event) {
      popupFor(index).then(function (html) { event.popup.setContent(html); });
    });
    state.markerCache[index] = made;
    return made;
  }

  function drawProjects(p) {
    /* Only the difference goes to markercluster: markers leaving the view are removed, those
       entering are added (each made once, then kept); an unchanged set costs nothing. */
    var total = state.projects.lat.length, wanted = new Uint8Array(total);
    p.shown.forEach(function (run) { wanted.fill(1, run[0], Math.min(run[1], total)); });
    var had = state.shownFlags || new Uint8Array(total), add = [], remove = [];
    for (var i = 0; i < total; i += 1) {
      if (wanted[i] && !had[i]) { add.push(marker(i)); }
      else if (had[i] && !wanted[i]) { remove.push(state.markerCache[i]); }
    }
    state.shownFlags = wanted;
    var layer = state.projectLayer;
    if (layer.removeLayers) { layer.removeLayers(remove); layer.addLayers(add); }
    else {
      remove.forEach(function (m) { layer.removeLayer(m); });
      add.forEach(function (m) { layer.addLayer(m); });
    }
  }

  /* --- the legend control --- */
  function legendControl() {
    var control = L.control({ position: "topleft" });
    control.onAdd = function () {
      var box = L.DomUtil.create("div", "km-legend");
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    return control;
  }

  function drawLegend(p) {
    var box = state.legend.getContainer();
    var details = box.querySelector("details");
    var open = details ? details.open : !narrow();
    box.innerHTML = p.legend;  /* built and escaped by the server (maps.legend_html) */
    details = box.querySelector("details");
    if (details) { details.open = open; }
  }

  /* --- per view: the payload --- */
  function drawOverlays(group, p) {
    (p.overlays || []).forEach(function (overlay) {
      var layer = L.geoJSON(overlay.geojson, {
        style: function () { return overlay.style; }, interactive: overlay.interactive
      });
      if (overlay.tooltip) {
        layer.bindTooltip(function (shape) {
          var box = element(null, "div");
          overlay.tooltip.forEach(function (field) {
            element(box, "div", null, field[1] + ": " + shape.feature.properties[field[0]]);
          });
          return box;
        });
      }
      layer.addTo(group);
      layer.eachLayer(keyboardFree);
    });
    if (p.search) {
      var s = p.search;
      L.circle([s.lat, s.lon], {
        radius: s.radius_m, color: "#111111", weight: 2, dashArray: "6 4", fillOpacity: 0.04,
        interactive: false
      }).addTo(group);
      L.circleMarker([s.lat, s.lon], {
        radius: 5, color: "#ffffff", weight: 2, fillColor: "#111111", fillOpacity: 1,
        interactive: false
      }).addTo(group);
    }
  }

  function selectedBounds(code) {
    var found = null;
    state.areaLayer.eachLayer(function (layer) {
      if (layer.feature.properties.code === code) { found = layer; }
    });
    if (found) { found.bringToFront(); }
    return found ? found.getBounds() : null;
  }

  function attribution(p) {
    var control = state.map.attributionControl;
    if (state.attribution) { control.removeAttribution(state.attribution); }
    state.attribution = p.attribution;
    if (p.attribution) { control.addAttribution(p.attribution); }
  }

  function applyNow(group, p) {
    fitHeight();
    state.payload = p;
    state.areaLayer.setStyle(areaStyle);
    drawLegend(p);
    attribution(p);
    drawOverlays(group, p);
    drawProjects(p);
    var fitted = false;
    /* A position from the link (streamlit-folium's zoom and center, applied before this runs)
       wins on arrival over any fit. */
    var linked = Boolean(window.__GLOBAL_DATA__ && window.__GLOBAL_DATA__.last_zoom);
    if (p.fit && !state.placed && linked) { state.lastFit = p.fit.key; }
    if (p.fit && p.fit.key !== state.lastFit) {
      var bounds = p.fit.bounds ? L.latLngBounds(p.fit.bounds) : selectedBounds(p.area);
      if (bounds) { fitClear(bounds, p.fit.maxZoom); fitted = true; }
    }
    if (p.fit) { state.lastFit = p.fit.key; }
    if (p.area) { selectedBounds(p.area); }
    if (!fitted && !state.placed && !linked) {
      fitClear(L.latLngBounds(state.opts.bounds));
    }
    state.placed = true;
    state.applied = (state.applied || 0) + 1;
    window.setTimeout(fitHeight, 0);
  }

  KM.apply = function (group, payload) {
    state.ready.then(function () { applyNow(group, payload); })
      .catch(function (error) { console.error("Kindred Map:", error); });
  };

  KM.init = function (map, opts) {
    state = { map: map, opts: opts, markerCache: {}, placed: false, lastFit: null };
    KM.current = state;  /* read by the browser tests and the benchmark */
    quietUntilTouched(map);
    state.popupOptions = {
      maxWidth: 320, autoPanPaddingTopLeft: L.point(60, 70), autoPanPaddingBottomRight: L.point(20, 40)
    };
    /* Projects in their own SVG pane above the areas: a chosen area brought to the front
       never covers them, and markercluster keeps only the visible ones in the page. */
    map.createPane("kmProjects");
    map.getPane("kmProjects").style.zIndex = 610;
    if (L.MarkerCluster) {  /* cluster badges out of the tab order too */
      L.MarkerCluster.prototype.options.keyboard = false;
    }
    map.createPane("kmPlaces");
    map.getPane("kmPlaces").style.zIndex = 450;
    map.getPane("kmPlaces").style.pointerEvents = "none";
    state.areaLayer = L.geoJSON(null, {
      style: areaStyle,
      onEachFeature: function (feature, layer) {
        layer.bindTooltip(areaTooltip, { sticky: true });
        layer.on("mouseover", function () {
          var fill = state.payload && state.payload.fill[feature.properties.index];
          if (fill !== undefined && fill >= 0) { layer.setStyle(opts.hoverStyle); }
        });
        layer.on("mouseout", function () { state.areaLayer.resetStyle(layer); });
        layer.on("add", function () { keyboardFree(layer); });
      }
    }).addTo(map);
    var overlays = {};
    overlays[opts.areaLabel] = state.areaLayer;
    var outlines = opts.outlines.map(function (outline) {
      var layer = L.geoJSON(null, { style: function () { return outline.style; }, interactive: false });
      layer.addTo(map);
      overlays[outline.label] = layer;
      return layer;
    });
    state.places = L.layerGroup().addTo(map);
    overlays[opts.placesLabel] = state.places;
    state.projectLayer = opts.grouped
      ? L.markerClusterGroup(L.extend({
        chunkedLoading: true,
        iconCreateFunction: function (cluster) {
          var count = cluster.getChildCount(), size = count < 10 ? 28 : count < 100 ? 34 : 40;
          return L.divIcon({
            html: "<span>" + count + "</span>", className: "km-cluster",
            iconSize: L.point(size, size)
          });
        }
      }, opts.cluster))
      : L.featureGroup();
    state.projectLayer.addTo(map);
    overlays[opts.projectsLabel] = state.projectLayer;
    state.legend = legendControl().addTo(map);
    state.control = L.control.layers(null, overlays, { collapsed: narrow() }).addTo(map);
    map.on("zoomend", showPlaces);
    /* A popup folds the legend and the layer list, so that they never hide it. */
    var folded = null;
    map.on("popupopen", function () {
      var details = state.legend.getContainer().querySelector("details");
      folded = { legend: details && details.open };
      if (details) { details.open = false; }
      state.control.collapse();
    });
    map.on("popupclose", function () {
      var details = state.legend.getContainer().querySelector("details");
      if (folded && folded.legend && details) { details.open = true; }
      if (!narrow()) { state.control.expand(); }
    });
    try { window.parent.addEventListener("resize", fitHeight); } catch (error) { /* no parent */ }
    fitHeight();
    /* The fixed layers (areas, outlines, place labels) come in one file, the projects in
       another: a new visitor's map waits for two requests, not five. */
    var layers = fetchJson(opts.layersUrl).then(function (data) {
      state.areaLayer.addData(data.areas);
      outlines.forEach(function (layer, index) { layer.addData(data.outlines[index]); });
      drawPlaces(data.places);
    });
    var projects = fetchJson(opts.projectsUrl).then(function (data) { state.projects = data; });
    state.ready = Promise.all([layers, projects]);
  };
})();
