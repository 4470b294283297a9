-- The projection is written behind the log: a vnode's changed states are kept in memory and
-- written in one sorted transaction per vnode, so a B-tree page takes many changes per write
-- instead of one. While a vnode has states not yet written, its row here holds the log
-- position the stored projection reflects; start-up replays the log after it. No row: the
-- stored projection is current.
CREATE TABLE projection_lag (
  vnode INTEGER PRIMARY KEY,
  seq   INTEGER NOT NULL
);
