//! Picasso's core: everything the Lambda functions and the local stack share.
//! The domain and the routers know nothing of AWS; adapters implement the ports.

pub mod api;
pub mod aws;
pub mod budget;
pub mod catalog;
pub mod config;
pub mod domain;
pub mod error;
pub mod identity;
pub mod inspect;
pub mod integrity;
#[cfg(feature = "memory")]
pub mod memory;
pub mod metrics;
pub mod multipart;
pub mod openapi;
pub mod processor;
pub mod store;
pub mod sweeper;
pub mod telemetry;
