-- The drive's metadata. Portable SQL where it costs nothing: integer ids, text, blobs,
-- no SQLite-only types, so that the same schema can be carried to PostgreSQL.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    is_admin        INTEGER NOT NULL DEFAULT 0,
    -- Bumped whenever a credential of the user changes, so that every process forgets
    -- verifications it remembered for the old credentials.
    credential_epoch INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);

CREATE TABLE spaces (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    owner_id        INTEGER REFERENCES users (id),
    root_id         INTEGER,
    quota_bytes     INTEGER,
    used_bytes      INTEGER NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX spaces_owner ON spaces (owner_id);

-- Content is addressed by its SHA-256. Small contents live in `data`; larger ones in the
-- blob folder, in which case `data` is NULL.
CREATE TABLE blobs (
    hash            TEXT PRIMARY KEY,
    size            INTEGER NOT NULL,
    data            BLOB
);

CREATE TABLE nodes (
    id              INTEGER PRIMARY KEY,
    space_id        INTEGER NOT NULL REFERENCES spaces (id),
    parent_id       INTEGER REFERENCES nodes (id),
    name            TEXT NOT NULL,
    is_dir          INTEGER NOT NULL,
    size            INTEGER NOT NULL DEFAULT 0,
    content_hash    TEXT REFERENCES blobs (hash),
    mtime_ns        INTEGER NOT NULL,
    created_ns      INTEGER NOT NULL,
    -- Value of the global change counter when this node or anything below it last changed.
    change_seq      INTEGER NOT NULL
);

CREATE UNIQUE INDEX nodes_parent_name ON nodes (parent_id, name);
CREATE INDEX nodes_space ON nodes (space_id);

CREATE TABLE versions (
    id              INTEGER PRIMARY KEY,
    node_id         INTEGER NOT NULL,
    content_hash    TEXT NOT NULL REFERENCES blobs (hash),
    size            INTEGER NOT NULL,
    mtime_ns        INTEGER NOT NULL,
    replaced_ns     INTEGER NOT NULL,
    author_id       INTEGER
);

CREATE INDEX versions_node ON versions (node_id);

CREATE TABLE dead_props (
    node_id         INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    namespace       TEXT NOT NULL,
    name            TEXT NOT NULL,
    xml             BLOB NOT NULL,
    PRIMARY KEY (node_id, namespace, name)
);

CREATE TABLE locks (
    token           TEXT PRIMARY KEY,
    space_id        INTEGER NOT NULL REFERENCES spaces (id),
    path            TEXT NOT NULL,
    principal       TEXT,
    owner_xml       BLOB,
    timeout_secs    INTEGER,
    expires_ns      INTEGER,
    shared          INTEGER NOT NULL,
    deep            INTEGER NOT NULL
);

CREATE INDEX locks_space ON locks (space_id);

CREATE TABLE app_passwords (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label           TEXT NOT NULL,
    digest          TEXT NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);

CREATE TABLE refresh_tokens (
    digest          TEXT PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family          TEXT NOT NULL,
    expires_at      INTEGER NOT NULL,
    used            INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE revoked_tokens (
    jti             TEXT PRIMARY KEY,
    expires_at      INTEGER NOT NULL
);

CREATE TABLE settings (
    key             TEXT PRIMARY KEY,
    value           TEXT NOT NULL
);

CREATE TABLE counters (
    name            TEXT PRIMARY KEY,
    value           INTEGER NOT NULL
);

INSERT INTO counters (name, value) VALUES ('change', 0);
