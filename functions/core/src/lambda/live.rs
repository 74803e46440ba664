//! The WebSocket API of live status: a `$connect` authorizer verifying the HTTP API's JWT
//! (browsers cannot set headers on a WebSocket, so it comes as `?token=`), and the function
//! that keeps the connections table (`$connect`, `$disconnect`).

use aws_lambda_events::event::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::event::iam::{IamPolicyEffect, IamPolicyStatement};
use serde_json::{Value, json};

use crate::aws::{Audience, Connections, sdk_config};
use crate::config::AuthorizerConfig;
use crate::domain::Owner;
use crate::jwt::JwtVerifier;

pub struct Authorizer {
    verifier: JwtVerifier,
    admin_group: String,
}

impl Authorizer {
    pub async fn from_env() -> anyhow::Result<Self> {
        let c = AuthorizerConfig::from_lookup(|k| std::env::var(k).ok())?;
        let hour = std::time::Duration::from_secs(3600);
        let verifier = JwtVerifier::discover(&c.issuer, &c.audience, &c.groups_claim, hour / 60, hour).await?;
        Ok(Self { verifier, admin_group: c.admin_group })
    }

    pub fn new(verifier: JwtVerifier, admin_group: impl Into<String>) -> Self {
        Self { verifier, admin_group: admin_group.into() }
    }

    /// Allows `$connect` with a valid token (and `scope=all` only for admins), passing whose
    /// events the connection gets as the context; anything else is an error, which API
    /// Gateway answers `401`.
    pub async fn authorize(&self, req: ApiGatewayCustomAuthorizerRequestTypeRequest) -> anyhow::Result<Value> {
        let query = &req.query_string_parameters;
        let token = query.first("token").ok_or_else(|| anyhow::anyhow!("Unauthorized"))?;
        let claims = self.verifier.verify(token).await.map_err(|_| anyhow::anyhow!("Unauthorized"))?;
        let owner = Owner::parse(&claims.sub).ok_or_else(|| anyhow::anyhow!("Unauthorized"))?;
        let audience = match query.first("scope") {
            None | Some("mine") => Audience::Owner(owner.clone()),
            Some("all") if claims.groups.contains(&self.admin_group) => Audience::Everyone,
            Some(_) => anyhow::bail!("Unauthorized"),
        };
        let mut statement = IamPolicyStatement::default();
        statement.action = vec!["execute-api:Invoke".into()];
        statement.effect = IamPolicyEffect::Allow;
        statement.resource = vec![req.method_arn.unwrap_or_default()];
        let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
        policy.version = Some("2012-10-17".into());
        policy.statement = vec![statement];
        let mut response = ApiGatewayCustomAuthorizerResponse::<Value>::default();
        response.principal_id = Some(owner.to_string());
        response.policy_document = policy;
        response.context = json!({"audience": audience.key()});
        Ok(serde_json::to_value(response)?)
    }
}

pub struct ConnectionsFunction {
    connections: Connections,
}

impl ConnectionsFunction {
    pub async fn from_env() -> anyhow::Result<Self> {
        let table = std::env::var("CONNECTIONS_TABLE").map_err(|_| anyhow::anyhow!("CONNECTIONS_TABLE is not set"))?;
        Ok(Self { connections: Connections::new(&sdk_config().await?, table, None) })
    }

    /// `$connect` records the connection under the audience its authorizer allowed;
    /// `$disconnect` forgets it. (A WebSocket event: its authorizer context is read as API
    /// Gateway sends it, beside `principalId`.)
    pub async fn handle(&self, event: Value) -> anyhow::Result<Value> {
        let ctx = &event["requestContext"];
        let connection = ctx["connectionId"].as_str().ok_or_else(|| anyhow::anyhow!("no connectionId"))?;
        let audience = ctx["authorizer"]["audience"].as_str();
        match (ctx["routeKey"].as_str(), audience) {
            (Some("$connect"), Some(audience)) => self.connections.open_key(audience, connection).await?,
            (Some("$connect"), None) => return Ok(json!({"statusCode": 401})),
            (Some("$disconnect"), Some(audience)) => self.connections.close(audience, connection).await?,
            _ => {}
        }
        Ok(json!({"statusCode": 200}))
    }
}
