//! End-to-end tests of the `carcosa` binary: the real executable, a real database, a real server.

mod commands;
mod crash;
mod logs;
mod quickstart;
mod support;
mod sync;
mod users;
