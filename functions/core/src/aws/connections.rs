//! Live status on AWS: the WebSocket API's open connections, kept per owner in a table (an
//! admin's `scope=all` connections under one shared key), and each event posted to those of
//! its owner. A connection API Gateway no longer knows is removed when a post finds it gone.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::change::Change;
use crate::domain::Owner;
use crate::notify::body;

/// API Gateway closes a WebSocket connection after two hours at most: the item's TTL.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// Whose events a connection receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Owner(Owner),
    /// An admin's `scope=all`.
    Everyone,
}

impl Audience {
    /// The table's partition key.
    pub fn key(&self) -> String {
        match self {
            Audience::Owner(o) => format!("owner#{o}"),
            Audience::Everyone => "all".to_owned(),
        }
    }
}

pub struct Connections {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    /// Only the events function posts; the connect function only keeps the table.
    api: Option<aws_sdk_apigatewaymanagement::Client>,
}

impl Connections {
    /// `endpoint`: the API's management URL, `https://ID.execute-api.REGION.amazonaws.com/STAGE`.
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>, endpoint: Option<&str>) -> Self {
        let api = endpoint.map(|e| {
            let conf = aws_sdk_apigatewaymanagement::config::Builder::from(sdk).endpoint_url(e).build();
            aws_sdk_apigatewaymanagement::Client::from_conf(conf)
        });
        Self { ddb: aws_sdk_dynamodb::Client::new(sdk), table: table.into(), api }
    }

    /// Records `connection` under an audience's key (as its authorizer passed it).
    pub async fn open_key(&self, audience_key: &str, connection: &str) -> anyhow::Result<()> {
        let expires = chrono::Utc::now() + CONNECTION_LIFETIME;
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("audience", AttributeValue::S(audience_key.to_owned()))
            .item("connection_id", AttributeValue::S(connection.to_owned()))
            .item("expires_at", AttributeValue::N(expires.timestamp().to_string()))
            .send()
            .await
            .context("DynamoDB PutItem (connection)")?;
        Ok(())
    }

    pub async fn close(&self, audience_key: &str, connection: &str) -> anyhow::Result<()> {
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .key("audience", AttributeValue::S(audience_key.to_owned()))
            .key("connection_id", AttributeValue::S(connection.to_owned()))
            .send()
            .await
            .context("DynamoDB DeleteItem (connection)")?;
        Ok(())
    }

    async fn of(&self, audience_key: &str) -> anyhow::Result<Vec<String>> {
        let items = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("audience = :a")
            .expression_attribute_values(":a", AttributeValue::S(audience_key.to_owned()))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .context("DynamoDB Query (connections)")?;
        Ok(items.iter().filter_map(|i| i.get("connection_id")?.as_s().ok().cloned()).collect())
    }

    /// Each change to its owner's connections and to the admins watching everyone's.
    pub async fn push_all(&self, changes: &[&Change]) {
        let Some(api) = &self.api else { return };
        if changes.is_empty() {
            return;
        }
        let mut by_audience: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in changes {
            let message = body(c).to_string();
            if let Some(owner) = &c.record.owner {
                by_audience.entry(Audience::Owner(owner.clone()).key()).or_default().push(message.clone());
            }
            by_audience.entry(Audience::Everyone.key()).or_default().push(message);
        }
        for (audience, messages) in by_audience {
            let connections = match self.of(&audience).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "reading live connections");
                    continue;
                }
            };
            for connection in connections {
                for m in &messages {
                    if !self.post(api, &audience, &connection, m).await {
                        break;
                    }
                }
            }
        }
    }

    /// Whether the connection is still there.
    async fn post(
        &self,
        api: &aws_sdk_apigatewaymanagement::Client,
        audience: &str,
        connection: &str,
        message: &str,
    ) -> bool {
        use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
        let sent = api
            .post_to_connection()
            .connection_id(connection)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(message.as_bytes()))
            .send()
            .await;
        match sent {
            Ok(_) => true,
            Err(e) if matches!(e.as_service_error(), Some(PostToConnectionError::GoneException(_))) => {
                if let Err(e) = self.close(audience, connection).await {
                    tracing::warn!(error = format!("{e:#}"), "removing a gone connection");
                }
                false
            }
            Err(e) => {
                tracing::warn!(error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(e), "posting to a live connection");
                true
            }
        }
    }
}
