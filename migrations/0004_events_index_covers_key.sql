-- Snapshots list the keys a vnode's log tail touched. With the key in the index that is a
-- read of the index alone; without it, one table page per entry (a vnode's entries are
-- spread across the append-only table), 10-24 ms of the event loop per snapshot measured.
DROP INDEX events_by_vnode;
CREATE UNIQUE INDEX events_by_vnode ON events (vnode, seq, key);
