//! Helpers shared by the integration tests in `tests/tests.rs`.
//!
//! Not every test uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

pub(crate) mod netns;
pub(crate) mod servicelab;
pub(crate) mod sshd;
pub(crate) mod zones;
