-- Browser sessions. The HttpOnly cookie holds a secret whose digest is kept here, with the
-- token the page must send back with every write (against cross-site request forgery).
CREATE TABLE sessions (
    digest          TEXT PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);

CREATE INDEX sessions_expiry ON sessions (expires_at);
