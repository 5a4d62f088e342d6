-- Deleted items wait in their space's trash. The top of a deleted subtree leaves the tree
-- (it has no parent any more) and remembers when it was deleted, the folder it was in and
-- the path it had; what was below it stays below it.
ALTER TABLE nodes ADD COLUMN trashed_ns INTEGER;
ALTER TABLE nodes ADD COLUMN trash_parent_id INTEGER;
ALTER TABLE nodes ADD COLUMN trash_path TEXT;

CREATE INDEX nodes_trashed ON nodes (space_id, trashed_ns) WHERE trashed_ns IS NOT NULL;
