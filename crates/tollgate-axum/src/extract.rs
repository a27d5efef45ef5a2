//! Extractors: the user a token names, trusted from the token alone or loaded from a database,
//! and guards that require `is_staff` or `is_superuser`.

use std::future::Future;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use serde_json::Value;
use tollgate_core::{Claims, TokenType};

use crate::error::{AuthError, Rejection};
use crate::verifier::{VerifiedToken, Verifier};

/// The request's verified token: the one [`AuthLayer`](crate::AuthLayer) left in the
/// extensions, or else the token of the request's header, verified now.
async fn verified_token(parts: &Parts, verifier: &Verifier) -> Result<VerifiedToken, AuthError> {
    if let Some(token) = parts.extensions.get::<VerifiedToken>() {
        return Ok(token.clone());
    }
    verifier
        .authenticate(&parts.headers)
        .await?
        .ok_or(AuthError::NotAuthenticated)
}

impl<S> FromRequestParts<S> for VerifiedToken
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let verifier = Verifier::from_ref(state);
        verified_token(parts, &verifier)
            .await
            .map_err(|err| verifier.reject(err))
    }
}

/// What the guards ask of a user.
pub trait Permissions {
    /// Django's `is_staff`.
    fn is_staff(&self) -> bool;
    /// Django's `is_superuser`.
    fn is_superuser(&self) -> bool;
}

/// The user named by a valid token, trusted from the token alone, with no database: simplejwt's
/// `JWTStatelessUserAuthentication` and its `TokenUser`. `username`, `is_staff` and
/// `is_superuser` are read from claims of those names when the issuer writes them.
///
/// ```
/// use axum::{extract::FromRef, routing::get, Router};
/// use tollgate_axum::{TokenUser, Verifier};
///
/// #[derive(Clone, FromRef)]
/// struct AppState {
///     verifier: Verifier,
/// }
///
/// async fn whoami(user: TokenUser) -> String {
///     format!("user {}", user.id)
/// }
///
/// fn app(state: AppState) -> Router {
///     Router::new().route("/whoami", get(whoami)).with_state(state)
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TokenUser {
    /// The user id claim (USER_ID_CLAIM).
    pub id: String,
    /// The `username` claim, or "".
    pub username: String,
    /// The token's claims.
    pub claims: Claims,
    /// The type the token was accepted as.
    pub token_type: TokenType,
}

impl TokenUser {
    /// The user of a verified token; a token without the user id claim is refused.
    pub fn from_token(verifier: &Verifier, token: VerifiedToken) -> Result<TokenUser, AuthError> {
        let id = verifier.user_id(&token)?;
        Ok(TokenUser {
            id,
            username: token.claims.str("username").unwrap_or_default().to_owned(),
            claims: token.claims,
            token_type: token.token_type,
        })
    }

    fn flag(&self, name: &str) -> bool {
        self.claims.get(name).and_then(Value::as_bool) == Some(true)
    }
}

impl Permissions for TokenUser {
    fn is_staff(&self) -> bool {
        self.flag("is_staff")
    }

    fn is_superuser(&self) -> bool {
        self.flag("is_superuser")
    }
}

impl<S> FromRequestParts<S> for TokenUser
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let verifier = Verifier::from_ref(state);
        let token = verified_token(parts, &verifier).await;
        token
            .and_then(|token| TokenUser::from_token(&verifier, token))
            .map_err(|err| verifier.reject(err))
    }
}

/// An error from a [`UserStore`]; logged, never shown to the client.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where [`CurrentUser`] loads users from: the service's own database.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
/// use tollgate_axum::{BoxError, Permissions, UserStore};
///
/// #[derive(Clone)]
/// struct Account { active: bool, staff: bool }
///
/// impl Permissions for Account {
///     fn is_staff(&self) -> bool { self.staff }
///     fn is_superuser(&self) -> bool { false }
/// }
///
/// #[derive(Clone)]
/// struct Accounts(Arc<HashMap<String, Account>>);
///
/// impl UserStore for Accounts {
///     type User = Account;
///     async fn find_user(&self, user_id: &str) -> Result<Option<Account>, BoxError> {
///         Ok(self.0.get(user_id).cloned())
///     }
///     fn is_active(user: &Account) -> bool { user.active }
/// }
/// ```
pub trait UserStore: Send + Sync {
    /// The service's user.
    type User: Send;

    /// The user whose id (the token's USER_ID_CLAIM) is `user_id`, if there is one.
    fn find_user(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<Self::User>, BoxError>> + Send;

    /// Whether the user may still authenticate (Django's `is_active`).
    fn is_active(user: &Self::User) -> bool;
}

/// The user named by a valid token, loaded from the service's [`UserStore`]: simplejwt's
/// `JWTAuthentication`. A missing user is refused ("User not found"), and with
/// CHECK_USER_IS_ACTIVE so is an inactive one ("User is inactive").
///
/// ```
/// # use std::sync::Arc;
/// # use tollgate_axum::{BoxError, Permissions, UserStore};
/// # #[derive(Clone)] struct Account { name: String }
/// # impl Permissions for Account {
/// #     fn is_staff(&self) -> bool { false }
/// #     fn is_superuser(&self) -> bool { false }
/// # }
/// # #[derive(Clone)] struct Accounts;
/// # impl UserStore for Accounts {
/// #     type User = Account;
/// #     async fn find_user(&self, id: &str) -> Result<Option<Account>, BoxError> {
/// #         Ok(Some(Account { name: id.to_owned() }))
/// #     }
/// #     fn is_active(_: &Account) -> bool { true }
/// # }
/// use axum::{extract::FromRef, routing::get, Router};
/// use tollgate_axum::{CurrentUser, Verifier};
///
/// #[derive(Clone, FromRef)]
/// struct AppState {
///     verifier: Verifier,
///     accounts: Accounts,
/// }
///
/// async fn hello(CurrentUser { user, .. }: CurrentUser<Accounts>) -> String {
///     format!("hello, {}", user.name)
/// }
///
/// fn app(state: AppState) -> Router {
///     Router::new().route("/hello", get(hello)).with_state(state)
/// }
/// ```
pub struct CurrentUser<U: UserStore> {
    /// The user, as the store returned it.
    pub user: U::User,
    /// The verified token.
    pub token: VerifiedToken,
}

impl<U: UserStore> std::fmt::Debug for CurrentUser<U>
where
    U::User: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentUser")
            .field("user", &self.user)
            .field("token", &self.token)
            .finish()
    }
}

impl<U> Permissions for CurrentUser<U>
where
    U: UserStore,
    U::User: Permissions,
{
    fn is_staff(&self) -> bool {
        self.user.is_staff()
    }

    fn is_superuser(&self) -> bool {
        self.user.is_superuser()
    }
}

impl<S, U> FromRequestParts<S> for CurrentUser<U>
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    U: UserStore + FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let verifier = Verifier::from_ref(state);
        let store = U::from_ref(state);
        let result = async {
            let token = verified_token(parts, &verifier).await?;
            let user_id = verifier.user_id(&token)?;
            let user = store
                .find_user(&user_id)
                .await
                .map_err(|cause| {
                    tracing::error!(cause = %cause, "user store failed");
                    AuthError::Internal
                })?
                .ok_or(AuthError::UserNotFound)?;
            if verifier.check_user_is_active() && !U::is_active(&user) {
                return Err(AuthError::UserInactive);
            }
            Ok(CurrentUser { user, token })
        };
        result.await.map_err(|err| verifier.reject(err))
    }
}

/// Admits only users whose `is_staff` is true (Django REST framework's `IsAdminUser`); others
/// get 403 with DRF's body. Wraps [`TokenUser`] or [`CurrentUser`].
///
/// ```
/// use tollgate_axum::{Staff, TokenUser};
///
/// async fn admin_page(Staff(user): Staff<TokenUser>) -> String {
///     format!("welcome, {}", user.username)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Staff<T>(pub T);

/// Admits only users whose `is_superuser` is true; others get 403 with DRF's body.
///
/// ```
/// use tollgate_axum::{Superuser, TokenUser};
///
/// async fn dangerous(Superuser(user): Superuser<TokenUser>) -> String {
///     format!("as you wish, {}", user.username)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Superuser<T>(pub T);

async fn guarded<S, T>(
    parts: &mut Parts,
    state: &S,
    allowed: fn(&T) -> bool,
) -> Result<T, Rejection>
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    T: FromRequestParts<S, Rejection = Rejection> + Permissions,
{
    let user = T::from_request_parts(parts, state).await?;
    if allowed(&user) {
        Ok(user)
    } else {
        Err(Verifier::from_ref(state).reject(AuthError::PermissionDenied))
    }
}

impl<S, T> FromRequestParts<S> for Staff<T>
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    T: FromRequestParts<S, Rejection = Rejection> + Permissions,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        guarded(parts, state, T::is_staff).await.map(Staff)
    }
}

impl<S, T> FromRequestParts<S> for Superuser<T>
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    T: FromRequestParts<S, Rejection = Rejection> + Permissions,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        guarded(parts, state, T::is_superuser).await.map(Superuser)
    }
}
