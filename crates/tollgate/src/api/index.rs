//! The protected index: who am I.

use std::sync::Arc;

use axum::Json;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use tollgate_store::User;

use crate::auth::AuthenticatedUser;

/// The body of the index, `{"id": …, "username": …}`, written straight from the shared user.
pub(crate) struct Identity(Arc<User>);

impl Serialize for Identity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut body = serializer.serialize_struct("Identity", 2)?;
        body.serialize_field("id", &self.0.id)?;
        body.serialize_field("username", &self.0.username)?;
        body.end()
    }
}

/// `GET /api/index/`: the authenticated user's id and username.
pub(crate) async fn index(auth: AuthenticatedUser) -> Json<Identity> {
    Json(Identity(auth.user))
}
