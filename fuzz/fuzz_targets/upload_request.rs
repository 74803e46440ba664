#![no_main]
//! See `picasso_fuzz::upload_request` for what the input is and what is asserted.

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: picasso_fuzz::tolerate_caught_panics(), |data: &[u8]| {
    picasso_fuzz::upload_request(data);
});
