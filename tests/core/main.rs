//! Integration suite of the core: a real core in-process, driven over HTTP (and the CLI binary).
//! Runs on SQLite by default and on PostgreSQL when `REDOUBT_TEST_DATABASE_URL` is set.

mod bootstrap;
mod channel;
mod cli;
mod config_errors;
mod credentials;
mod database_loss;
mod directory;
mod dos;
mod embedded;
mod errors;
mod examples;
mod failover;
mod forwarded;
mod health;
mod ldap;
mod load;
mod lockout;
mod login;
mod offline;
mod oidc;
mod operations;
mod outpost;
mod outposts;
mod provider_warnings;
mod proxy_peers;
mod rac;
mod rac_browser;
mod rac_outpost;
mod radius;
mod secrets;
mod tokens;
