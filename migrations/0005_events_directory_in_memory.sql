-- A vnode's log is found through a directory of row ids the store keeps in memory (rebuilt
-- from this table at start-up). The index it replaces put one more page per vnode written
-- into every group commit's write-ahead log: a third of the pages written per entry.
DROP INDEX events_by_vnode;
