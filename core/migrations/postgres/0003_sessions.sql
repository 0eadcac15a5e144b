-- Stateless browser sessions: revocations pushed to proxy outposts, and the generations of the
-- keys that seal their session cookies (the keys themselves are derived from the secret key).
CREATE TABLE session_revocations (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    -- NULL ends every session of the user; otherwise the one core login session signed out.
    session_id TEXT,
    revoked_at_ms BIGINT NOT NULL,
    -- Unix seconds after which no session it could end is still valid.
    expires_at BIGINT NOT NULL
);
CREATE INDEX session_revocations_user ON session_revocations (user_id);
CREATE INDEX session_revocations_expiry ON session_revocations (expires_at);

CREATE TABLE session_key_generations (
    id BIGSERIAL PRIMARY KEY,
    created_at BIGINT NOT NULL
);
