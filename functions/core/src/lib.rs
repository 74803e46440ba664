//! Picasso's core: everything the Lambda functions and the local stack share.
//! The domain and the routers know nothing of AWS; adapters implement the ports.
//!
//! Layers, each using only those above it in this list (no circle, no arrow up):
//! `refusal`, `integrity`, `domain`, `parts`, `change`; `config`; the ports `catalog`, `store`;
//! `events`; `budget`, `inspect`; `processor`, `sweeper`; `error`, `identity`, `jwt`; `api`; `notify`;
//! the adapters `aws`; `lambda`, the Lambda composition root. `metrics` and `telemetry` are leaves any may use.

pub mod api;
pub mod aws;
pub mod budget;
pub mod catalog;
pub mod change;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod identity;
pub mod inspect;
pub mod integrity;
pub mod jwt;
pub mod lambda;
#[cfg(feature = "memory")]
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod parts;
pub mod processor;
pub mod refusal;
pub mod store;
pub mod sweeper;
pub mod telemetry;
