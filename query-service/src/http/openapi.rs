//! The OpenAPI 3.1 document of the read API, generated from the handlers' and types'
//! annotations (utoipa) and served at `GET /openapi.json`; the problem catalogue is generated
//! from [`ProblemType::ALL`].

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

use super::availability::AvailabilityResponse;
use super::problem::{FieldError, Problem, ProblemType};
use super::reservations::ReservationPage;
use super::stream::{StreamEvent, UpdateEvent};
use super::{availability, reservations, stream};
use crate::read::{ReservationView, SlotView};

/// The annotated API; [`document`] adds the problem catalogue.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Holdfast query API",
        description = "Availability, reservations and live updates from Holdfast's read models. \
            Pass a command answer's `position` as `min_position` (or the `Min-Position` header) to \
            read your own writes: the read waits, bounded, until the read model reached it, and \
            answers 503 `position-not-reached` with `Retry-After` rather than stale data. \
            Errors are RFC 9457 `application/problem+json`."
    ),
    paths(
        availability::availability,
        stream::stream,
        reservations::reservation,
        reservations::customer_reservations,
    ),
    components(schemas(
        AvailabilityResponse,
        SlotView,
        ReservationView,
        ReservationPage,
        UpdateEvent,
        StreamEvent,
        Problem,
        FieldError,
    )),
    tags(
        (name = "availability", description = "Capacity and use per day, and its live updates"),
        (name = "reservations", description = "Reservations by id and by customer"),
    )
)]
pub struct ApiDoc;

/// The full document: the annotated API plus a table of every problem type.
#[must_use]
pub fn document() -> Document {
    let mut document = ApiDoc::openapi();
    let mut catalogue =
        String::from("\n\nProblem types (`type` = `https://holdfast.dev/problems/<code>`):\n");
    for kind in ProblemType::ALL {
        catalogue.push_str(&format!("\n- `{}` ({}): {}", kind.code(), kind.status().as_u16(), kind.title()));
    }
    document.info.description.get_or_insert_with(String::new).push_str(&catalogue);
    holdfast_platform::auth::document(&mut document, |_, path| super::auth::needed(path));
    document
}

/// `GET /openapi.json`.
pub async fn serve() -> Json<Document> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_3_1_with_every_route_and_problem_type() {
        let json = serde_json::to_value(document()).expect("serializable");
        assert!(json["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", json["openapi"]);
        for path in [
            "/v1/resources/{id}/availability",
            "/v1/resources/{id}/availability/stream",
            "/v1/reservations/{id}",
            "/v1/customers/{id}/reservations",
        ] {
            assert!(json["paths"][path]["get"].is_object(), "{path}");
        }
        let description = json["info"]["description"].as_str().unwrap_or_default();
        for kind in ProblemType::ALL {
            assert!(description.contains(&format!("`{}`", kind.code())), "{}", kind.code());
        }
    }
}
