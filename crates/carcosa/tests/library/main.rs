//! Integration tests of the `carcosa` library against a real Carcosa server.

mod client;
mod support;
mod sync;
