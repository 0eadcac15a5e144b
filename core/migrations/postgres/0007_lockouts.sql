-- Locks of (source, user) pairs the brute-force policy decided, pushed to directory outposts so
-- their credential caches obey them too (see core/src/auth/lockout.rs). The counts themselves
-- come from the event log.
CREATE TABLE lockouts (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    source_address TEXT NOT NULL,
    -- Unix seconds at which the pair may try again.
    locked_until BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX lockouts_until ON lockouts (locked_until);
