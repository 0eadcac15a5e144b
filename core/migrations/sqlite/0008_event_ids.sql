-- Outposts queue events on disk and deliver them at least once, each with a random id made
-- when it was queued: the core stores an id once, whichever delivery arrives first.
-- Keep in step with ../postgres/0006_event_ids.sql.
ALTER TABLE events ADD COLUMN event_id TEXT;
CREATE UNIQUE INDEX events_event_id ON events(event_id);
