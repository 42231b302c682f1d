/* Kindred Map dashboard map (Leaflet). Geometry, places, project positions and popups come
   from static JSON files fetched once; each view sends one small JSON payload (KM.apply). No
   data ever passes through a template: text arrives as JSON and goes in as text or as HTML
   escaped by the server. */
(function () {
  "use strict";
  var KM = (window.KM = window.KM || {});
  var fetches = {};
  var NARROW_PX = 640;
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

  KM.seed = function (url, data) {
    /* A data file's content carried by the map's own script file (`assets.combined_js`): the
       map needs no request after its code for the files seeded here. */
    fetches[url] = Promise.resolve(data);
  };

  function narrow() {
    /* A small map (a phone's): the legend and the layer list start folded. The map's frame
       is the window here, so this is the map's own width. */
    return window.innerWidth < NARROW_PX;
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
  function controlBoxes() {
    /* Each control's box in the map's pixels (the legend, layer list, zoom, attribution). */
    var map = state.map, origin = map.getContainer().getBoundingClientRect();
    return Array.prototype.map.call(
      map.getContainer().querySelectorAll(".leaflet-control"), function (node) {
        var r = node.getBoundingClientRect();
        return [r.left - origin.left, r.top - origin.top, r.right - origin.left,
          r.bottom - origin.top];
      }).filter(function (b) { return b[2] > b[0] && b[3] > b[1]; });
  }

  var FIT_MIN_PX = 120;  /* the least room, after the controls, that a fit may count on */
  var FIT_MARGIN_PX = 10;
  var MARKER_CLEARANCE_PX = 14;
  var FIT_STEPS = 8;  /* zoom steps a fit may step down to clear the controls */  /* a cluster badge's half width, about */

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

  function coverMask(zoom, bounds, shapes) {
    /* What no control may cover at ``zoom``, drawn in world pixels on a canvas: with
       ``shapes`` the shaded areas' shapes and the shown projects (with a badge's room), else
       the whole of ``bounds`` (a chosen area's or a search circle's box). */
    var map = state.map, around = shapes ? bounds.pad(0.25) : bounds;  /* projects outside */
    var box = L.bounds(map.project(around.getNorthWest(), zoom),
      map.project(around.getSouthEast(), zoom));
    var pad = MARKER_CLEARANCE_PX * 2;
    var canvas = document.createElement("canvas");
    canvas.width = Math.ceil(box.max.x - box.min.x) + 2 * pad;
    canvas.height = Math.ceil(box.max.y - box.min.y) + 2 * pad;
    var ctx = canvas.getContext("2d"), ox = box.min.x - pad, oy = box.min.y - pad;
    var mask = { w: canvas.width, h: canvas.height, ox: ox, oy: oy };
    ctx.fillStyle = "#000";
    if (!shapes) {
      ctx.fillRect(pad, pad, canvas.width - 2 * pad, canvas.height - 2 * pad);
      mask.data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      return mask;
    }
    function ring(points) {
      points.forEach(function (latlng, i) {
        var p = map.project(latlng, zoom);
        if (i) { ctx.lineTo(p.x - ox, p.y - oy); } else { ctx.moveTo(p.x - ox, p.y - oy); }
      });
      ctx.closePath();
    }
    function rings(latlngs) {
      if (L.LineUtil.isFlat(latlngs)) { ring(latlngs); } else { latlngs.forEach(rings); }
    }
    ctx.lineWidth = 2;
    state.areaLayer.eachLayer(function (layer) {
      if (!layer.getLatLngs) { return; }
      ctx.beginPath();
      rings(layer.getLatLngs());
      ctx.fill("evenodd");
      ctx.stroke();
    });
    var flags = state.shownFlags || [], data = state.projects;
    for (var i = 0; data && i < flags.length; i += 1) {
      if (!flags[i]) { continue; }
      var p = map.project([data.lat[i], data.lon[i]], zoom);
      ctx.beginPath();
      ctx.arc(p.x - ox, p.y - oy, MARKER_CLEARANCE_PX, 0, 2 * Math.PI);
      ctx.fill();
    }
    mask.data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    return mask;
  }

  function covered(mask, boxes, topLeft) {
    /* Whether any control box (map pixels, the map's top left at world pixel ``topLeft``)
       lies over a drawn pixel of ``mask`` (every other pixel looked at). */
    return boxes.some(function (b) {
      var x0 = Math.max(0, Math.floor(b[0] + topLeft.x - mask.ox));
      var x1 = Math.min(mask.w, Math.ceil(b[2] + topLeft.x - mask.ox));
      var y0 = Math.max(0, Math.floor(b[1] + topLeft.y - mask.oy));
      var y1 = Math.min(mask.h, Math.ceil(b[3] + topLeft.y - mask.oy));
      for (var y = y0; y < y1; y += 2) {
        for (var x = x0; x < x1; x += 2) {
          if (mask.data[(y * mask.w + x) * 4 + 3]) { return true; }
        }
      }
      return false;
    });
  }

  function fitNow(bounds, maxZoom) {
    /* The greatest zoom (in the map's zoom steps) at which ``bounds`` fits in the map and no
       control covers what it must not (`coverMask`): at each zoom the bounds are tried
       centred, then pushed to each side and corner of the room they leave. A legend over
       the sea costs the region nothing; one over a ward moves or shrinks the fit. */
    var map = state.map, margin = FIT_MARGIN_PX, size = map.getSize();
    var snap = map.options.zoomSnap || 0.25, top = maxZoom || state.opts.maxFitZoom;
    var boxes = controlBoxes(), region = bounds.equals(L.latLngBounds(state.opts.bounds));
    var zoom = Math.min(map.getBoundsZoom(bounds, false, L.point(2 * margin, 2 * margin)), top);
    var places = [0.5, 0, 1];  /* centred, then to one side, then to the other */
    for (var step = 0; step <= FIT_STEPS; step += 1, zoom -= snap) {
      var nw = map.project(bounds.getNorthWest(), zoom), se = map.project(bounds.getSouthEast(), zoom);
      var slack = size.subtract(se.subtract(nw)).subtract(L.point(2 * margin, 2 * margin));
      if (slack.x < 0 || slack.y < 0) { continue; }
      var mask = coverMask(zoom, bounds, region);
      for (var i = 0; i < places.length * places.length; i += 1) {
        var fx = places[i % places.length], fy = places[Math.floor(i / places.length)];
        var topLeft = nw.subtract(L.point(margin + fx * slack.x, margin + fy * slack.y));
        if (!covered(mask, boxes, topLeft)) {
          map.setView(map.unproject(topLeft.add(size.divideBy(2)), zoom), zoom, { animate: false });
          return;
        }
      }
    }
    /* nothing clear within FIT_STEPS steps: the whole bounds, controls or not */
    map.fitBounds(bounds, { padding: [margin, margin], maxZoom: top, animate: false });
  }

  /* --- reports to the page: "drawn" once, then none until someone moves or clicks the map --- */
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
      api.kmSend = send;
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

  /* --- place labels: by priority, never over one another, a marker or a control --- */
  var LABEL_FONTS = { town: "600 13px sans-serif", suburb: "500 11px sans-serif" };
  var LABEL_PAD_PX = 3;  /* room kept around a label's text (its white halo) */
  var LABEL_SHIFTS = [[0, 0, 0]];  /* [x, y] direction and gap (px) of a label's places */
  [4, 16, 32].forEach(function (gap) {
    [[0, -1], [0, 1], [1, 0], [-1, 0], [1, -1], [-1, -1], [1, 1], [-1, 1]].forEach(function (d) {
      LABEL_SHIFTS.push([d[0], d[1], gap]);
    });
  });

  function drawPlaces(places) {
    /* ``places`` come in priority order (towns, then suburbs and villages, each by the
       residents nearest them: `mapview.place_records`); a label is made when first shown. */
    state.placeList = places;
    placeLabels();
  }

  function textBox(place) {
    if (!place.size) {
      var ctx = state.measure || (state.measure = document.createElement("canvas").getContext("2d"));
      ctx.font = LABEL_FONTS[place.kind] || LABEL_FONTS.suburb;
      var height = place.kind === "town" ? 15 : 13;
      place.size = [ctx.measureText(place.name).width + 2 * LABEL_PAD_PX, height + LABEL_PAD_PX];
    }
    return place.size;
  }

  function markerBoxes(size) {
    /* What the projects layer shows now (cluster badges and single markers) as boxes in the
       map's pixels, those in view only. A badge counts where it is drawn and where it is
       going: markercluster may leave a badge where it was while its centre moves (after
       loading in chunks), and slides badges into place after a zoom (CSS, 0.3 s). */
    var map = state.map, boxes = [], layer = state.projectLayer, pad = 2;
    if (!layer || !map.hasLayer(layer)) { return boxes; }
    var origin = map.getContainer().getBoundingClientRect();
    var visible = layer._featureGroup || layer;  /* markercluster's visible clusters and markers */
    visible.eachLayer(function (item) {
      var p = map.latLngToContainerPoint(item.getLatLng()), count = item.getChildCount
        ? item.getChildCount() : 0;
      /* a badge's half width with its border (iconCreateFunction), or a marker's radius */
      var half = (count ? (count < 10 ? 16 : count < 100 ? 19 : 22) : state.opts.radius + 2) + pad;
      var box = [p.x - half, p.y - half, p.x + half, p.y + half];
      if (item._icon) {
        var r = item._icon.getBoundingClientRect();
        box = [Math.min(box[0], r.left - origin.left - pad), Math.min(box[1], r.top - origin.top - pad),
          Math.max(box[2], r.right - origin.left + pad), Math.max(box[3], r.bottom - origin.top + pad)];
      }
      if (box[2] < 0 || box[3] < 0 || box[0] > size.x || box[1] > size.y) { return; }
      boxes.push(box);
    });
    return boxes;
  }

  function overlaps(box, boxes) {
    for (var i = 0; i < boxes.length; i += 1) {
      var b = boxes[i];
      if (box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3]) { return true; }
    }
    return false;
  }

  function placeLabels() {
    /* Greedy in priority order: a place's label shows when its kind's zoom is reached, on
       its point or just beside it, where it lies wholly inside the map and overlaps no label
       already shown, no cluster badge or marker and no control (legend, layer list, zoom,
       attribution); else it is dropped at this zoom and place. Run after every move, zoom,
       cluster change and legend fold. */
    state.labelsQueued = false;
    var map = state.map, places = state.placeList;
    if (!places) { return; }
    var size = map.getSize(), zoom = map.getZoom(), zooms = state.opts.placeZooms;
    var on = map.hasLayer(state.places);
    var blocked = on ? controlBoxes().concat(markerBoxes(size)) : [], shown = [];
    var pane = map.getPane("kmPlaces");
    places.forEach(function (place) {
      var box = null;
      if (on && zoom >= zooms[place.kind]) {
        var p = map.latLngToContainerPoint([place.lat, place.lon]), wh = textBox(place);
        var w = wh[0] / 2, h = wh[1] / 2;
        /* on its point, else beside it (above, below, right, left, then the corners), near
           first, then a little further */
        box = LABEL_SHIFTS.map(function (shift) {
          var x = p.x + shift[0] * (w + shift[2]), y = p.y + shift[1] * (h + shift[2]);
          return [x - w, y - h, x + w, y + h];
        }).find(function (b) {
          return b[0] >= 0 && b[1] >= 0 && b[2] <= size.x && b[3] <= size.y &&
            !overlaps(b, shown) && !overlaps(b, blocked);
        }) || null;
      }
      if (!box) {
        if (place.node) { place.node.style.display = "none"; }
        return;
      }
      shown.push(box);
      if (!place.node) {
        place.node = element(pane, "div", "km-place km-place-" + place.kind, place.name);
      }
      var at = map.containerPointToLayerPoint([box[0] + LABEL_PAD_PX, box[1] + LABEL_PAD_PX / 2]);
      L.DomUtil.setPosition(place.node, at);
      place.node.style.display = "block";
    });
    state.labelRuns = (state.labelRuns || 0) + 1;  /* read by the browser tests */
  }

  function queueLabels() {
    if (state.labelsQueued) { return; }
    state.labelsQueued = true;
    window.requestAnimationFrame(placeLabels);
  }

  function hideLabels() {
    (state.placeList || []).forEach(function (place) {
      if (place.node) { place.node.style.display = "none"; }
    });
  }

  /* --- tooltips stay inside the map --- */
  var tooltipPosition = L.Tooltip.prototype._setPosition;
  L.Tooltip.include({
    _setPosition: function (pos) {
      /* Leaflet places a tooltip beside its point; near an edge (a phone's narrow map) it
         would run out of the map and be cut off: move it back inside. */
      tooltipPosition.call(this, pos);
      var map = this._map, node = this._container;
      if (!map || !node) { return; }
      var box = node.getBoundingClientRect(), room = map.getContainer().getBoundingClientRect();
      var dx = 0, dy = 0, edge = 2;  /* the drawn box: Leaflet's arrow margin included */
      if (box.right > room.right - edge) { dx = room.right - edge - box.right; }
      if (box.left + dx < room.left + edge) { dx = room.left + edge - box.left; }
      if (box.bottom > room.bottom - edge) { dy = room.bottom - edge - box.bottom; }
      if (box.top + dy < room.top + edge) { dy = room.top + edge - box.top; }
      if (dx || dy) { L.DomUtil.setPosition(node, L.DomUtil.getPosition(node).add([dx, dy])); }
    }
  });

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
    if (layer.removeLayers) {
      /* markercluster adds in chunks and moves its clusters to their weighted centres at
         the end: labels are placed again then (chunkProgress), not before */
      state.clustering = Boolean(add.length && layer._map);
      layer.removeLayers(remove);
      layer.addLayers(add);
    }
    else {
      remove.forEach(function (m) { layer.removeLayer(m); });
      add.forEach(function (m) { layer.addLayer(m); });
    }
  }

  /* --- the legend control --- */
  function legendControl() {
    var control = L.control({ position: "topright" });
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
    queueLabels();
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
    state.places = L.layerGroup().addTo(map);  /* empty: its checkbox shows or hides labels */
    overlays[opts.placesLabel] = state.places;
    state.projectLayer = opts.grouped
      ? L.markerClusterGroup(L.extend({
        chunkedLoading: true,
        chunkProgress: function (done, total) {
          if (done === total) { state.clustering = false; queueLabels(); }
        },
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
    /* Top right, the layer list folded to its button (it opens on hover, focus or a tap)
       above the legend: the region's north-east corner is open country, its north-west the
       Southport coast (issue 23: no control over the region at the first fit). */
    state.control = L.control.layers(null, overlays, { collapsed: true }).addTo(map);
    state.legend = legendControl().addTo(map);
    map.on("zoomstart", hideLabels);
    map.on("zoomend moveend resize overlayadd overlayremove", queueLabels);
    state.projectLayer.on("animationend", queueLabels);
    state.legend.getContainer().addEventListener("toggle", queueLabels, true);
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
    reportDrawn();
  };

  function reportDrawn() {
    /* Once per frame, when the first view is drawn (or its data failed): {drawn: true}, with
       no place in it. A new session's first run sends the map alone and this report brings
       the rest of the page (the map page's `show_map`), so that the widgets' code, fetched
       as they arrive, does not queue before the map's. Later it reruns only the map's
       fragment, which finds nothing to do. */
    var api = window.Streamlit;
    if (!api || !api.kmSend || api.kmDrawn) { return; }
    api.kmDrawn = true;
    var report = function () {
      window.setTimeout(function () { api.kmSend({ drawn: true }); }, 0);
    };
    state.ready.then(function () { return new Promise(function (done) {
      window.requestAnimationFrame(function () { done(); });
    }); }).then(report, report);
  }
})();
