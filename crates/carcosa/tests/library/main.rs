//! Integration tests of the `carcosa` library against a real Carcosa server.

mod client;
mod receiver;
mod support;
mod sync;
