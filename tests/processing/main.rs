//! Processing: what the processor makes of each file, how it survives faults and redelivery,
//! its memory bound, and the fuzz corpus replayed.

#[path = "../common/mod.rs"]
mod common;

mod faults;
mod fuzz_corpus;
mod peak_memory;
mod processing;
mod processor;
