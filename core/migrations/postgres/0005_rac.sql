-- Remote access (RAC): endpoint credentials sealed at rest, the server keys outposts saw, and
-- the connections counted against limits across outpost replicas.
-- Keep in step with ../sqlite/0005_rac.sql.
CREATE TABLE rac_endpoint_credentials (
    provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    endpoint_slug TEXT NOT NULL,
    -- JSON {username, domain, password} sealed under a key derived from the secret key, with the
    -- provider id and the slug as associated data.
    sealed TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (provider_id, endpoint_slug)
);

-- The last server key fingerprint a `started` report gave, per endpoint.
CREATE TABLE rac_endpoint_keys (
    provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    endpoint_slug TEXT NOT NULL,
    server_key_sha256 TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (provider_id, endpoint_slug)
);

CREATE TABLE rac_connections (
    id TEXT PRIMARY KEY,
    provider_id BIGINT NOT NULL,
    endpoint_slug TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    auth_time_ms BIGINT NOT NULL,
    outpost_id BIGINT NOT NULL,
    instance_id TEXT NOT NULL,
    client_address TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    -- The connection counts against limits until then unless renewed.
    lease_until BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- Set by a `started` report.
    connected_at BIGINT,
    ended_at BIGINT,
    end_reason TEXT,
    bytes_from_server BIGINT NOT NULL DEFAULT 0,
    bytes_to_browser BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX rac_connections_open_endpoint ON rac_connections (provider_id, endpoint_slug, ended_at, lease_until);
CREATE INDEX rac_connections_open_user ON rac_connections (provider_id, user_id, ended_at, lease_until);
CREATE INDEX rac_connections_started ON rac_connections (started_at);
