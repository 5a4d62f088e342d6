-- SHA-1 of each content, computed while it is received: the Nextcloud clients and rclone
-- compare files by it (`oc:checksums`). NULL for contents stored before it was kept.
ALTER TABLE blobs ADD COLUMN sha1 TEXT;

-- Where nodes left a folder (deleted, moved or renamed away), so that a client asking
-- for the changes since a sync token learns of removals as well as of changes.
CREATE TABLE departures (
    change_seq      INTEGER NOT NULL,
    space_id        INTEGER NOT NULL,
    parent_id       INTEGER NOT NULL,
    name            TEXT NOT NULL
);

CREATE INDEX departures_change ON departures (space_id, change_seq);

-- Where nodes arrived by a move (which keeps their ETag and thus their change_seq).
CREATE TABLE arrivals (
    change_seq      INTEGER NOT NULL,
    space_id        INTEGER NOT NULL,
    node_id         INTEGER NOT NULL
);

CREATE INDEX arrivals_change ON arrivals (space_id, change_seq);

-- The changes of a space since a token, in time proportional to their number.
CREATE INDEX nodes_change ON nodes (space_id, change_seq);
