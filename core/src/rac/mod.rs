//! Remote access (RAC) in the core: who may open which endpoint ([`access`]), endpoint
//! credentials sealed at rest ([`credentials`]), and the checks the outpost-facing grant, lease
//! and endpoint-list calls share ([`check`]).

pub mod access;
pub mod check;
pub mod credentials;
