-- The OpenID Connect provider: signing keys, authorization codes, refresh tokens and issued
-- access tokens. Keep in step with ../postgres/0004_oidc.sql.
CREATE TABLE oidc_signing_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kid TEXT NOT NULL UNIQUE,
    algorithm TEXT NOT NULL,
    -- PKCS#8 of the private key, sealed under a key derived from the secret key.
    private_sealed TEXT NOT NULL,
    -- The public key as the JWKS publishes it (JSON).
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- When a newer key replaced it; published until retired_at plus the retention period.
    retired_at BIGINT
);

CREATE TABLE oidc_authorization_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash TEXT NOT NULL UNIQUE,
    provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    session_id TEXT NOT NULL,
    auth_time_ms BIGINT NOT NULL,
    -- The token family its exchange started (set when it is used).
    family_id TEXT,
    used_at BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_authorization_codes_expiry ON oidc_authorization_codes(expires_at);

CREATE TABLE oidc_refresh_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    family_id TEXT NOT NULL,
    provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    nonce TEXT,
    session_id TEXT NOT NULL,
    auth_time_ms BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- Set when it was exchanged for a new one; using it again revokes the family.
    rotated_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oidc_refresh_tokens_family ON oidc_refresh_tokens(family_id);
CREATE INDEX oidc_refresh_tokens_expiry ON oidc_refresh_tokens(expires_at);

CREATE TABLE oidc_access_tokens (
    jti TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    provider_id BIGINT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX oidc_access_tokens_family ON oidc_access_tokens(family_id);
CREATE INDEX oidc_access_tokens_expiry ON oidc_access_tokens(expires_at);
