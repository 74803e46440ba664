//! What reaches the processor: S3 event notifications (through SQS or direct), the objects
//! they name, and the schedule that runs the sweeper. Below both the processor and the
//! sweeper, which share [`ObjectRef`].

use aws_lambda_events::sqs::SqsEvent;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::{now, rfc3339};

/// An S3 event notification, reduced to what processing reads. `aws_lambda_events`' S3 types
/// require fields (`userIdentity`, `requestParameters`…) that emulators and some
/// producers omit, and a notification that fails to parse must not be lost over them.
#[derive(Debug, Default, Deserialize)]
pub struct S3Event {
    #[serde(rename = "Records", default)]
    pub records: Vec<S3EventRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3EventRecord {
    pub event_name: Option<String>,
    pub s3: S3Entity,
}

#[derive(Debug, Deserialize)]
pub struct S3Entity {
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Deserialize)]
pub struct S3Bucket {
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct S3Object {
    pub key: Option<String>,
}

/// What a Lambda invocation of the processor carries.
#[derive(Debug)]
pub enum Incoming {
    Sqs(SqsEvent),
    S3(S3Event),
    /// The EventBridge schedule that runs the sweeper.
    Schedule,
}

impl Incoming {
    /// SQS and S3 events both have `Records`; the first record's `eventSource` tells them apart.
    pub fn from_value(v: Value) -> anyhow::Result<Self> {
        if v.get("source").and_then(Value::as_str) == Some("aws.events")
            && v.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        {
            return Ok(Incoming::Schedule);
        }
        let source = v.pointer("/Records/0/eventSource").and_then(Value::as_str).unwrap_or_default();
        Ok(match source {
            "aws:sqs" => Incoming::Sqs(serde_json::from_value(v)?),
            "aws:s3" => Incoming::S3(serde_json::from_value(v)?),
            "" if v.get("Records").is_some_and(|r| r.as_array().is_some_and(Vec::is_empty)) => {
                Incoming::S3(S3Event::default())
            }
            other => anyhow::bail!("unsupported event (eventSource {other:?}): expected an SQS or S3 event"),
        })
    }
}

/// A bucket and a decoded object key from one notification record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

impl ObjectRef {
    /// Keys arrive URL-encoded, with `+` for a space.
    pub fn from_record(r: &S3EventRecord) -> Option<Self> {
        let key = r.s3.object.key.as_deref()?;
        let key = urlencoding::decode(&key.replace('+', " ")).ok()?.into_owned();
        Some(Self { bucket: r.s3.bucket.name.clone()?, key })
    }

    /// The S3 notification for this object, as S3 sends it (key URL-encoded, `+` for a space):
    /// what the sweeper puts back on the queue.
    pub fn notification(&self) -> Value {
        let key = urlencoding::encode(&self.key).replace("%2F", "/").replace("%20", "+");
        json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventTime": rfc3339(&now()),
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "picasso-sweeper",
                "bucket": {"name": self.bucket, "arn": format!("arn:aws:s3:::{}", self.bucket)},
                "object": {"key": key}
            }
        }]})
    }
}

/// The body of an SQS message fed by S3: notifications, or the test event S3 sends once.
#[derive(Debug)]
pub enum Notification {
    Objects(Vec<ObjectRef>),
    Test,
}

impl Notification {
    pub fn parse(body: &str) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct TestEvent {
            #[serde(rename = "Event")]
            event: String,
        }
        if let Ok(t) = serde_json::from_str::<TestEvent>(body) {
            anyhow::ensure!(t.event == "s3:TestEvent", "unknown S3 message {:?}", t.event);
            return Ok(Notification::Test);
        }
        let event: S3Event = serde_json::from_str(body)?;
        Ok(Notification::Objects(event.objects()))
    }
}

impl S3Event {
    /// The objects this event says were created.
    pub fn objects(&self) -> Vec<ObjectRef> {
        self.records
            .iter()
            .filter(|r| r.event_name.as_deref().is_some_and(|n| n.starts_with("ObjectCreated:")))
            .filter_map(ObjectRef::from_record)
            .collect()
    }
}
