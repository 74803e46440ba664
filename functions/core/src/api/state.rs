//! What the handlers share, and the request helpers every resource uses.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::domain::{FileId, FileRecord};
use crate::error::ApiError;
use crate::identity::{Authenticator, Caller, Identity};
use crate::store::{ObjectStore, Presigner};

/// Adapters behind their ports, the configuration, and who may call.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub presigner: Arc<dyn Presigner>,
    pub store: Arc<dyn ObjectStore>,
    pub config: Arc<Config>,
    pub identity: Identity,
}

impl AppState {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        presigner: Arc<dyn Presigner>,
        store: Arc<dyn ObjectStore>,
        config: Config,
        auth: Arc<dyn Authenticator>,
    ) -> Self {
        let identity = Identity { auth, admin_group: config.admin_group.as_str().into() };
        Self { catalog, presigner, store, config: Arc::new(config), identity }
    }
}

impl FromRef<AppState> for Identity {
    fn from_ref(st: &AppState) -> Self {
        st.identity.clone()
    }
}

/// The file with this id if the caller may see it. Someone else's file is answered as if it
/// did not exist: no existence oracle.
pub async fn visible_record(st: &AppState, caller: &Caller, id: &str) -> Result<FileRecord, ApiError> {
    found(st, id, |r| r.visible_to(&caller.owner, caller.admin)).await
}

/// The file with this id if the caller owns it: what every write needs. Admins read
/// everyone's files but change only their own; another's is answered as one that does not
/// exist, to them too.
pub async fn owned_record(st: &AppState, caller: &Caller, id: &str) -> Result<FileRecord, ApiError> {
    found(st, id, |r| r.owned_by(&caller.owner)).await
}

async fn found(st: &AppState, id: &str, may: impl FnOnce(&FileRecord) -> bool) -> Result<FileRecord, ApiError> {
    let missing = || ApiError::not_found(format!("no file with id {id:?}"));
    let file_id = FileId::parse(id).ok_or_else(missing)?;
    let record = st.catalog.get(file_id).await?.ok_or_else(missing)?;
    if !may(&record) {
        return Err(missing());
    }
    Ok(record)
}
