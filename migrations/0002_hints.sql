-- Entries a sloppy-quorum fallback holds for an unreachable owner, until the owner acks them.
CREATE TABLE hints (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  target     TEXT    NOT NULL,
  vnode      INTEGER NOT NULL,
  body       BLOB    NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX hints_by_target ON hints (target, id);
