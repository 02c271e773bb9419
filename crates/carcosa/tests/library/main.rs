//! Integration tests of the `carcosa` library against a real Carcosa server.

mod client;
mod detect;
mod metrics;
mod prisma;
mod receiver;
mod support;
mod sync;
