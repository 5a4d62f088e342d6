-- What happened in each space, and who did it: the activity feed of a space or a file, and
-- the audit log an administrator exports. `path` is where the item was when it happened;
-- `detail` the former path of a move or a rename.
CREATE TABLE activity (
    id              INTEGER PRIMARY KEY,
    at_ns           INTEGER NOT NULL,
    space_id        INTEGER NOT NULL,
    node_id         INTEGER,
    actor_id        INTEGER,
    action          TEXT NOT NULL,
    path            TEXT NOT NULL,
    detail          TEXT
);

CREATE INDEX activity_space ON activity (space_id, id);
CREATE INDEX activity_node ON activity (node_id, id);
