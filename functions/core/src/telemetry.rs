//! Logs: JSON lines in Lambda (CloudWatch keeps the request id alongside), readable text in a terminal.
//! s3s logs every refused request as an error; the local stack reports what matters itself.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,s3s=off"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if in_lambda {
        // Lambda adds its own timestamps; the runtime's span carries the request id.
        builder.json().with_current_span(true).with_span_list(false).without_time().with_ansi(false).init();
    } else {
        builder.with_target(false).init();
    }
}
