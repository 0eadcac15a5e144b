-- The outpost control channel: credential epochs and outpost instances.
ALTER TABLE users ADD COLUMN credential_epoch BIGINT NOT NULL DEFAULT 0;

CREATE TABLE outpost_instances (
    outpost_id BIGINT NOT NULL REFERENCES outposts(id) ON DELETE CASCADE,
    instance_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    software_version TEXT NOT NULL,
    build TEXT NOT NULL,
    protocol_version BIGINT NOT NULL,
    remote_address TEXT NOT NULL,
    applied_revision BIGINT,
    connected BOOLEAN NOT NULL,
    connected_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (outpost_id, instance_id)
);
