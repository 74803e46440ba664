//! The webhook signing secret, read from Secrets Manager once per cold start.

use anyhow::Context;

use crate::notify::webhook::WebhookSecret;

/// The secret at `arn`: a `whsec_…` value as given, or the stack's generated one (32 letters and
/// digits, which are base64 of 24 bytes) with the prefix added.
pub async fn webhook_secret(client: &aws_sdk_secretsmanager::Client, arn: &str) -> anyhow::Result<WebhookSecret> {
    let out = client.get_secret_value().secret_id(arn).send().await.context("Secrets Manager GetSecretValue")?;
    let value = out.secret_string().context("the webhook secret is not a string")?.trim();
    let value = if value.starts_with("whsec_") { value.to_owned() } else { format!("whsec_{value}") };
    WebhookSecret::parse(&value).map_err(|e| anyhow::anyhow!("the webhook secret at {arn}: {e}"))
}
