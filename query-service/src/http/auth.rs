//! The token check in front of every read route ([`holdfast_platform::auth`]) and the scope
//! each route needs. The [`holdfast_platform::auth::Principal`] is left in the request's
//! extensions: a customer reads only its own reservations (`Principal::acts_for`).

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use holdfast_platform::auth::Scope;

use super::AppState;
use super::problem::Problem;

/// The scopes a route accepts (any one of them will do).
#[must_use]
pub fn needed(route: &str) -> &'static [Scope] {
    if route.starts_with("/v1/resources/") { &[Scope::AvailabilityRead] } else { &[Scope::ReservationsRead] }
}

/// Authenticates the request and checks its scope; refuses with 401, 403 or 503.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("", MatchedPath::as_str);
    match state.auth.admit(request.headers(), needed(route)).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => Problem::from_auth(&error, request.uri().path()).into_response(),
    }
}
