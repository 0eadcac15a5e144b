//! Authentication building blocks: password hashing, TOTP, API tokens, sealing of stored
//! secrets, the brute-force policy, and the credential check outposts call.

pub mod credentials;
pub mod lockout;
pub mod password;
pub mod seal;
pub mod token;
pub mod totp;
