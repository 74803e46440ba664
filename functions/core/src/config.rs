//! Configuration from environment variables, the names `template.yaml` declares.

use std::time::Duration;

use anyhow::{Context, bail};

use crate::change::EventTypes;
use crate::domain::AllowList;

/// Any file type: known types are checked deeply, others fingerprinted. Deployers narrow it.
pub const DEFAULT_ALLOWED_TYPES: &str = "*";

/// 5 GiB: the largest single PUT (and part) S3 accepts.
pub const MAX_SINGLE_PUT: u64 = 5 << 30;
/// S3's smallest part, the last one aside.
pub const MIN_PART: u64 = 5 << 20;
/// The largest file processed in one invocation at the measured read rate (see the README).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 5 << 30;

/// How long a processor's claim holds at least: longer than processing one file takes,
/// shorter than the queue's visibility timeout (1800 s).
pub const LEASE: Duration = Duration::from_secs(120);

/// How much longer than its upload URL a pending record may wait for its bytes before the
/// sweeper looks for them: their event may still be on its way.
pub const PENDING_GRACE_MARGIN: Duration = Duration::from_secs(60);

/// Cognito's groups claim, the default `GROUPS_CLAIM`. Its group names hold no spaces.
pub const COGNITO_GROUPS: &str = "cognito:groups";
/// Members of this group see everyone's files, by default.
pub const DEFAULT_ADMIN_GROUP: &str = "admins";
/// Upload slots one user may hold open at once, by default.
pub const DEFAULT_MAX_PENDING_PER_USER: u64 = 100;

#[derive(Debug, Clone)]
pub struct Config {
    /// DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// Bucket receiving the uploads (`BUCKET_NAME`).
    pub bucket_name: String,
    /// How long a presigned PUT stays valid (`UPLOAD_URL_TTL_SECS`, default 15 minutes).
    pub upload_url_ttl: Duration,
    /// Largest file accepted (`MAX_UPLOAD_BYTES`, default 5 GiB).
    pub max_upload_bytes: u64,
    /// Files larger than this come in parts (`MULTIPART_THRESHOLD`, default 64 MiB, at most
    /// 5 GiB: the largest single PUT S3 takes).
    pub multipart_threshold: u64,
    /// Size of each part but the last (`MULTIPART_PART_BYTES`, default 16 MiB, at least 5 MiB:
    /// S3's smallest part); raised for a file that would need more than 10,000 parts.
    pub part_bytes: u64,
    /// Accepted content types (`ALLOWED_CONTENT_TYPES`, comma-separated, `*` for any).
    pub allowed_types: AllowList,
    /// How long a `pending` record whose upload never arrives is kept (`PENDING_TTL_SECS`, default 1 day).
    pub pending_ttl: Duration,
    /// The processor's queue (`QUEUE_URL`): where the sweeper sends files again.
    pub queue_url: Option<String>,
    /// The queue's redrive `maxReceiveCount` (`MAX_RECEIVE_COUNT`, default 5).
    pub max_receive_count: u32,
    /// Memory for processing, in MiB (`PROCESSING_MEMORY_MB`); by default the function's
    /// memory less a headroom.
    pub processing_memory_mb: Option<u64>,
    /// Members of this group may list everyone's files (`ADMIN_GROUP`, default `admins`).
    pub admin_group: String,
    /// The claim that lists the caller's groups (`GROUPS_CLAIM`, default `cognito:groups`).
    pub groups_claim: String,
    /// Records the sweeper looks at per kind and run (`SWEEP_BATCH`, default 500).
    pub sweep_batch: usize,
    /// What one user may hold: files not yet final (`MAX_PENDING_PER_USER`, default 100) and
    /// bytes of all their files (`MAX_BYTES_PER_USER`, default unlimited); `unlimited` lifts either.
    pub limits: crate::catalog::Limits,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let required =
            |k: &str| get(k).filter(|v| !v.is_empty()).with_context(|| format!("environment variable {k} must be set"));
        let number = |k: &str, default: u64| -> anyhow::Result<u64> {
            match get(k).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => bail!("environment variable {k}={v:?} must be a positive whole number"),
                },
            }
        };
        let limit = |k: &str, default: Option<u64>| -> anyhow::Result<Option<u64>> {
            match get(k).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) if v.trim() == "unlimited" => Ok(None),
                Some(_) => number(k, 0).map(Some),
            }
        };
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            bucket_name: required("BUCKET_NAME")?,
            upload_url_ttl: Duration::from_secs(number("UPLOAD_URL_TTL_SECS", 15 * 60)?),
            max_upload_bytes: number("MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES)?,
            multipart_threshold: match number("MULTIPART_THRESHOLD", 64 << 20)? {
                n if n <= MAX_SINGLE_PUT => n,
                n => bail!("MULTIPART_THRESHOLD={n} is over {MAX_SINGLE_PUT}, the largest single PUT S3 accepts"),
            },
            part_bytes: match number("MULTIPART_PART_BYTES", 16 << 20)? {
                n if (MIN_PART..=MAX_SINGLE_PUT).contains(&n) => n,
                n => bail!("MULTIPART_PART_BYTES={n} must be from {MIN_PART} (5 MiB) to {MAX_SINGLE_PUT} (5 GiB)"),
            },
            allowed_types: AllowList::parse(
                &get("ALLOWED_CONTENT_TYPES")
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| DEFAULT_ALLOWED_TYPES.into()),
            ),
            pending_ttl: Duration::from_secs(number("PENDING_TTL_SECS", 24 * 60 * 60)?),
            queue_url: get("QUEUE_URL").filter(|v| !v.is_empty()),
            max_receive_count: u32::try_from(number("MAX_RECEIVE_COUNT", 5)?)
                .context("MAX_RECEIVE_COUNT is too large")?,
            admin_group: get("ADMIN_GROUP").filter(|v| !v.is_empty()).unwrap_or_else(|| DEFAULT_ADMIN_GROUP.into()),
            groups_claim: get("GROUPS_CLAIM").filter(|v| !v.is_empty()).unwrap_or_else(|| COGNITO_GROUPS.into()),
            sweep_batch: usize::try_from(number("SWEEP_BATCH", 500)?).context("SWEEP_BATCH is too large")?,
            limits: crate::catalog::Limits {
                pending: limit("MAX_PENDING_PER_USER", Some(DEFAULT_MAX_PENDING_PER_USER))?,
                bytes: limit("MAX_BYTES_PER_USER", None)?,
            },
            processing_memory_mb: get("PROCESSING_MEMORY_MB")
                .filter(|v| !v.is_empty())
                .map(|_| number("PROCESSING_MEMORY_MB", 0))
                .transpose()?,
        })
    }
}

/// The name events carry as their EventBridge `source` unless `EVENT_SOURCE` says otherwise.
pub const DEFAULT_EVENT_SOURCE: &str = "picasso";

/// The events function's settings.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// The bus events are put on (`EVENT_BUS_NAME`).
    pub bus_name: String,
    /// Their `source` (`EVENT_SOURCE`, default `picasso`).
    pub source: String,
    /// Which are published (`EVENT_TYPES`, default processed, failed, deleted).
    pub types: EventTypes,
    /// The WebSocket API's connections (`CONNECTIONS_TABLE`) and its management endpoint
    /// (`WEBSOCKET_ENDPOINT`, `https://ID.execute-api.REGION.amazonaws.com/STAGE`): with both,
    /// every event also goes to its owner's open connections.
    pub live: Option<(String, String)>,
}

impl EventsConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Ok(Self {
            bus_name: get("EVENT_BUS_NAME").context("EVENT_BUS_NAME is not set")?,
            source: get("EVENT_SOURCE").unwrap_or_else(|| DEFAULT_EVENT_SOURCE.into()),
            types: EventTypes::parse(&get("EVENT_TYPES").unwrap_or_else(|| EventTypes::DEFAULT.into()))
                .map_err(|e| anyhow::anyhow!("EVENT_TYPES: {e}"))?,
            live: get("CONNECTIONS_TABLE").zip(get("WEBSOCKET_ENDPOINT")),
        })
    }
}

/// The webhook function's settings: where to post, the secret's ARN (Secrets Manager), and
/// the queue whose messages it delivers (to space out the retries).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret_arn: String,
    pub queue_url: String,
}

impl WebhookConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let required = |k: &str| get(k).filter(|v| !v.trim().is_empty()).with_context(|| format!("{k} is not set"));
        Ok(Self {
            url: required("WEBHOOK_URL")?,
            secret_arn: required("WEBHOOK_SECRET_ARN")?,
            queue_url: required("WEBHOOK_QUEUE_URL")?,
        })
    }
}

/// The WebSocket `$connect` authorizer's settings: the HTTP API's issuer and audience.
#[derive(Debug, Clone)]
pub struct AuthorizerConfig {
    /// `JWT_ISSUER`: the exact `iss`; its discovery document names its keys.
    pub issuer: String,
    /// `JWT_AUDIENCE`: what `aud` (or `client_id`) must hold.
    pub audience: String,
    pub groups_claim: String,
    pub admin_group: String,
}

impl AuthorizerConfig {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Ok(Self {
            issuer: get("JWT_ISSUER").context("JWT_ISSUER is not set")?,
            audience: get("JWT_AUDIENCE").context("JWT_AUDIENCE is not set")?,
            groups_claim: get("GROUPS_CLAIM").unwrap_or_else(|| COGNITO_GROUPS.into()),
            admin_group: get("ADMIN_GROUP").unwrap_or_else(|| DEFAULT_ADMIN_GROUP.into()),
        })
    }
}

impl Config {
    /// A pending record younger than this may still be receiving its bytes, or its event may
    /// be on its way: the sweeper leaves it alone.
    pub fn pending_grace(&self) -> Duration {
        self.upload_url_ttl + PENDING_GRACE_MARGIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_and_overrides() {
        let c = cfg(&[("TABLE_NAME", "t"), ("BUCKET_NAME", "b")]).unwrap();
        assert_eq!(c.upload_url_ttl, Duration::from_secs(900));
        assert_eq!(c.max_upload_bytes, 5 << 30);
        assert_eq!((c.multipart_threshold, c.part_bytes), (64 << 20, 16 << 20));
        for any in ["image/png", "application/zip", "video/mp4", "application/octet-stream"] {
            assert!(c.allowed_types.permits(any), "{any} allowed by default");
        }
        let c = cfg(&[
            ("TABLE_NAME", "t"),
            ("BUCKET_NAME", "b"),
            ("UPLOAD_URL_TTL_SECS", "60"),
            ("ALLOWED_CONTENT_TYPES", "image/png, text/plain"),
        ])
        .unwrap();
        assert_eq!(c.upload_url_ttl, Duration::from_secs(60));
        assert!(c.allowed_types.permits("text/plain") && !c.allowed_types.permits("application/zip"));
    }

    #[test]
    fn errors_name_the_variable() {
        assert!(cfg(&[("BUCKET_NAME", "b")]).unwrap_err().to_string().contains("TABLE_NAME"));
        let e = cfg(&[("TABLE_NAME", "t"), ("BUCKET_NAME", "b"), ("MAX_UPLOAD_BYTES", "lots")]).unwrap_err();
        assert!(e.to_string().contains("MAX_UPLOAD_BYTES"));
        let e = cfg(&[("TABLE_NAME", "t"), ("BUCKET_NAME", "b"), ("MULTIPART_PART_BYTES", "1048576")]).unwrap_err();
        assert!(e.to_string().contains("MULTIPART_PART_BYTES"), "{e}");
        let e = cfg(&[("TABLE_NAME", "t"), ("BUCKET_NAME", "b"), ("MULTIPART_THRESHOLD", "6000000000")]).unwrap_err();
        assert!(e.to_string().contains("MULTIPART_THRESHOLD"), "{e}");
    }

    #[test]
    fn per_user_limits_default_to_100_slots_and_any_bytes_and_may_be_lifted() {
        let with = |pairs: &[(&str, &str)]| {
            let mut all = vec![("TABLE_NAME", "t"), ("BUCKET_NAME", "b")];
            all.extend_from_slice(pairs);
            cfg(&all)
        };
        let l = with(&[]).unwrap().limits;
        assert_eq!((l.pending, l.bytes), (Some(DEFAULT_MAX_PENDING_PER_USER), None));
        let l = with(&[("MAX_PENDING_PER_USER", "unlimited"), ("MAX_BYTES_PER_USER", "1000")]).unwrap().limits;
        assert_eq!((l.pending, l.bytes), (None, Some(1000)));
        for bad in ["0", "-1", "many"] {
            let e = with(&[("MAX_PENDING_PER_USER", bad)]).unwrap_err();
            assert!(e.to_string().contains("MAX_PENDING_PER_USER"), "{e}");
        }
    }
}
