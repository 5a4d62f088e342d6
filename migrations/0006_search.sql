-- Search. Names are kept folded (lower case, without accents) for substring matching, one
-- row per node; the words of text files are indexed with FTS5, the row id being the node id.
CREATE TABLE search_names (
    node_id         INTEGER PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    folded          TEXT NOT NULL
);

CREATE VIRTUAL TABLE search_text USING fts5 (
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);
