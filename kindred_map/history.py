"""Every change to a stored project, as events in the store's private ``history`` table.

Contract (issues 12, 13 and 15 build on it; a PostGIS backend keeps the same table and rules):

- Table ``history`` in the store's GeoPackage, private to the tool: not registered in
  ``gpkg_contents``, so GDAL, QGIS and every export ignore it. Columns:
  ``event_id INTEGER PRIMARY KEY`` (increasing: the order of events), ``project_id TEXT``,
  ``at TEXT`` (ISO 8601 UTC, seconds, e.g. ``2026-11-30T01:20:00+00:00``), ``who TEXT``,
  ``action TEXT`` (one of ACTIONS), ``source TEXT`` (``file partner.csv row 7``, ``form``,
  ``cli``, ``undo of import 3``...), ``import_id INTEGER NULL`` (the import batch the event
  belongs to; also set on ``undo`` events of an undone import), ``before TEXT`` (the full
  record as JSON, `record_json`, or NULL for a new project), ``after TEXT`` (the full record as
  JSON, never NULL: a retire keeps the record with ``retired_at``/``retired_reason`` set; an
  undo that removes a project an import created writes the removed record with
  ``"removed": true``), ``version INTEGER`` (the record's version after the event; 0 after a
  removal).
- A record's JSON holds every field of ``store.STORE_FIELDS`` (which includes lon/lat, the
  point) with the store's types: numbers as numbers, NULL for missing, booleans as booleans.
  Replaying ``after`` of a project's last event up to a date gives the project as of that date.
- Every write that changes projects (an import, add, edit, verify, retire, restore, undo)
  writes its rows and its events in the same SQLite transaction (`store._write_batch`) under
  the folder lock: a kill leaves both or neither. An import writes one event per new or
  changed row (unchanged rows: none), all with the batch's ``import_id``.
- Migration: a store without the table gets it on its first write, with one ``baseline`` event
  per existing project at the earliest ``imported_at`` of the import log (else the file's
  modification time): imports from before history existed count from their import date. A
  store that has not been written since can still be read: `read_history` gives those same
  baseline events without writing them.
"""
