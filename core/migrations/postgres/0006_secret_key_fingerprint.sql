-- A keyed fingerprint of the core's secret key (HMAC-SHA256 under the key, never the key):
-- a core started with another key refuses to start instead of failing to open what the first
-- key sealed, and replicas on one database must share one key.
-- Keep in step with the other backend's 0006_secret_key_fingerprint.sql.
CREATE TABLE secret_key_fingerprint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
