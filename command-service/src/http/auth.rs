//! The token check in front of every command route: who is calling
//! ([`holdfast_platform::auth`]) and whether the token grants what the route needs. The
//! [`holdfast_platform::auth::Principal`] is left in the request's extensions for the
//! handlers, which derive command ids from it and keep customers to their own reservations.

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use holdfast_platform::auth::Scope;

use super::AppState;
use super::problem::Problem;

/// The scopes a route accepts (any one of them will do).
#[must_use]
pub fn needed(method: &Method, route: &str) -> &'static [Scope] {
    match (method, route) {
        (_, "/v1/resources" | "/v1/resources/{id}/capacity" | "/v1/admin/partitions") => {
            &[Scope::ResourcesAdmin]
        }
        // Whoever may send commands may ask how they ended.
        (&Method::GET, "/v1/commands/{command_id}") => &[Scope::ReservationsWrite, Scope::ResourcesAdmin],
        _ => &[Scope::ReservationsWrite],
    }
}

/// Authenticates the request and checks its scope; refuses with 401, 403 or 503.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("", MatchedPath::as_str);
    let needed = needed(request.method(), route);
    match state.auth.admit(request.headers(), needed).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => Problem::from_auth(&error, request.uri().path()).into_response(),
    }
}
