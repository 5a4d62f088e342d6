-- Live documents of the co-editing service, keyed by the file they edit. A document is
-- its latest snapshot (a Yjs update encoding the whole state, garbage-collected) followed
-- by the updates received since, in order.
CREATE TABLE document_snapshots (
    node_id         INTEGER PRIMARY KEY,
    state           BLOB NOT NULL,
    -- The highest update sequence number the snapshot covers.
    covers_seq      INTEGER NOT NULL
);

CREATE TABLE document_updates (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id         INTEGER NOT NULL,
    data            BLOB NOT NULL
);

CREATE INDEX document_updates_node ON document_updates (node_id, seq);

-- The content of the file when its document last matched it (seeded from it or saved to
-- it). A file whose content differs was written by someone else in the meantime.
CREATE TABLE document_files (
    node_id         INTEGER PRIMARY KEY,
    synced_hash     TEXT NOT NULL
);
