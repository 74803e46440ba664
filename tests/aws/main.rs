//! Against the AWS emulator (moto) with the template's resources. Every test here is
//! `#[ignore]`d, so plain `cargo test` needs no emulator; `make test` starts it and runs
//! them with `cargo test --test aws -- --ignored`.

#[path = "../common/mod.rs"]
mod common;

mod capacity;
mod e2e;
mod listing;
mod migration;
mod quotas;
