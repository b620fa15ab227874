//! The OpenAPI 3.1 document of the command API, generated from the handlers' and types'
//! annotations (utoipa) and served at `GET /openapi.json`. Nothing here is written by hand
//! except the catalogue of problem types, which is generated from [`ProblemType::ALL`].

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

use super::admin::PartitionsResponse;
use super::dto::{
    CancelRequest, ChangeCapacityRequest, ConfirmRequest, DefineResourceRequest, PlaceHoldRequest,
};
use super::outcome::{PendingResponse, ReservationResponse, ResourceResponse};
use super::problem::{FieldError, Problem, ProblemType};
use super::{admin, commands, reservations, resources};
use crate::directory::{Announcement, Tenure};
use crate::lane::standby::StandbyStatus;
use crate::lane::{LaneStatus, Stage};

/// The annotated API; [`document`] adds the problem catalogue.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Holdfast command API",
        description = "Define resources, change capacity, hold, confirm and cancel reservations. \
            Every 2xx means the decision is committed in Kafka. Errors are RFC 9457 \
            `application/problem+json`; send an `Idempotency-Key` on every POST to retry safely."
    ),
    paths(
        resources::define,
        resources::change_capacity,
        reservations::place_hold,
        reservations::confirm,
        reservations::cancel,
        commands::outcome,
        admin::partitions,
    ),
    components(schemas(
        DefineResourceRequest,
        ChangeCapacityRequest,
        PlaceHoldRequest,
        ConfirmRequest,
        CancelRequest,
        ResourceResponse,
        ReservationResponse,
        PendingResponse,
        Problem,
        FieldError,
        PartitionsResponse,
        LaneStatus,
        Stage,
        StandbyStatus,
        Announcement,
        Tenure,
    )),
    tags(
        (name = "resources", description = "Bookable resources and their capacity"),
        (name = "reservations", description = "Holds and their confirmation or cancellation"),
        (name = "commands", description = "Outcomes of commands answered 202"),
        (name = "admin", description = "Operating the instances: partitions, owners, standbys"),
    )
)]
pub struct ApiDoc;

/// The full document: the annotated API plus a table of every problem type in its description.
#[must_use]
pub fn document() -> Document {
    let mut document = ApiDoc::openapi();
    let mut catalogue =
        String::from("\n\nProblem types (`type` = `https://holdfast.dev/problems/<code>`):\n");
    for kind in ProblemType::ALL {
        catalogue.push_str(&format!("\n- `{}` ({}): {}", kind.code(), kind.status().as_u16(), kind.title()));
    }
    let description = document.info.description.get_or_insert_with(String::new);
    description.push_str(&catalogue);
    holdfast_platform::auth::document(&mut document, super::auth::needed);
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
    fn document_is_openapi_3_1_and_names_every_problem_type() {
        let json = serde_json::to_value(document()).expect("serializable");
        assert!(json["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", json["openapi"]);
        let description = json["info"]["description"].as_str().unwrap_or_default();
        for kind in ProblemType::ALL {
            assert!(description.contains(&format!("`{}`", kind.code())), "{}", kind.code());
        }
        assert!(json["components"]["schemas"]["Problem"].is_object());
    }
}
