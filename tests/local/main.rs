//! The local stack (`cargo run`) as a process: its API, S3 endpoint, sign-in and metrics.

#[path = "../common/mod.rs"]
mod common;
mod harness;

mod auth;
mod events;
mod metrics;
mod multipart;
mod page;
mod stack;
