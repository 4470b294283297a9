-- Events move to one physically append-only table (rowid order = arrival order) with an
-- index for per-vnode reads. Keyed by (vnode, seq), every group commit dirtied one B-tree
-- leaf per vnode it touched; appending at one end halves the pages a commit writes.
CREATE TABLE events_v3 (
  id    INTEGER PRIMARY KEY,
  vnode INTEGER NOT NULL,
  seq   INTEGER NOT NULL,
  key   TEXT    NOT NULL,
  body  BLOB    NOT NULL
);
INSERT INTO events_v3 (vnode, seq, key, body) SELECT vnode, seq, key, body FROM events ORDER BY vnode, seq;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE UNIQUE INDEX events_by_vnode ON events (vnode, seq);
