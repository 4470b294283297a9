-- Node identity and fixed parameters (node id, actor, partition count).
CREATE TABLE meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- The truth: one append-only log per vnode. Rows are never updated in place; rows at or
-- below a vnode's snapshot position may be deleted by compaction.
CREATE TABLE events (
  vnode INTEGER NOT NULL,
  seq   INTEGER NOT NULL,
  key   TEXT    NOT NULL,
  body  BLOB    NOT NULL,
  PRIMARY KEY (vnode, seq)
) WITHOUT ROWID;

-- Derived: each key's siblings and causal context, updated in the same transaction as the
-- append, so a read is one indexed lookup. Rebuildable from snapshot + log tail.
CREATE TABLE projection (
  vnode INTEGER NOT NULL,
  key   TEXT    NOT NULL,
  state BLOB    NOT NULL,
  PRIMARY KEY (vnode, key)
) WITHOUT ROWID;

-- A snapshot freezes one vnode's projection at a log position.
CREATE TABLE snapshots (
  vnode      INTEGER PRIMARY KEY,
  seq        INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE snapshot_states (
  vnode INTEGER NOT NULL,
  key   TEXT    NOT NULL,
  state BLOB    NOT NULL,
  PRIMARY KEY (vnode, key)
) WITHOUT ROWID;
