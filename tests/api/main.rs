//! The API and the adapters it relies on, black-box, over in-memory adapters (and the
//! embedded catalog): what a client of `POST /upload`, `GET /files`… sees.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod catalog;
mod changes;
mod events;
mod multipart;
mod openapi;
mod ownership;
mod presign;
mod quotas;
mod search;
mod trust_store;
