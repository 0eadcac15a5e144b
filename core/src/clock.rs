//! Injected time: the one [`Clock`] trait the core and its outposts share (it lives in
//! `redoubt-outpost-proto`), so a test drives both sides with the same [`ManualClock`].

pub use redoubt_outpost_proto::clock::{Clock, ManualClock, SharedClock, SystemClock};
