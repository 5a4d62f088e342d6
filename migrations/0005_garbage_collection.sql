-- Garbage collection of contents: a content nothing refers to any more is first marked with
-- the time it was found so, and removed only once it has stayed so for a while (a backup
-- taken meanwhile may still be copying it). The indexes let the collector ask "does
-- anything refer to this content?" cheaply.
ALTER TABLE blobs ADD COLUMN orphaned_ns INTEGER;

CREATE INDEX nodes_content ON nodes (content_hash);
CREATE INDEX versions_content ON versions (content_hash);
