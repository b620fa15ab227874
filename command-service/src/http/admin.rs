//! `GET /v1/admin/partitions`: what this instance owns and stands by for, and the owners
//! directory as it sees it. For operators (`resources:admin`); `make status` prints it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::directory::{Announcement, Directory};
use crate::lane::LaneStatus;
use crate::lane::standby::{StandbyStatus, Standbys};
use crate::owners::Owners;

/// Where the admin view reads from.
#[derive(Debug, Clone)]
pub struct Partitions {
    /// This instance's id.
    pub instance: String,
    /// Its command API's address, as announced.
    pub address: Option<String>,
    /// Its lanes.
    pub owners: Arc<Owners>,
    /// The owners directory.
    pub directory: Arc<Directory>,
    /// The partitions it stands by for.
    pub standbys: Standbys,
}

/// This instance's partitions.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct PartitionsResponse {
    /// This instance's id.
    pub instance: String,
    /// Its command API's address, as announced in its claims.
    pub address: Option<String>,
    /// The partitions it was assigned, by partition: its claim and how far it is.
    pub owned: Vec<LaneStatus>,
    /// The partitions it stands by for: how far each is read and how far behind.
    pub standby: Vec<StandbyStatus>,
    /// The latest announced tenure of every partition, as this instance knows it.
    pub directory: Vec<Announcement>,
}

/// The partitions this instance owns and stands by for, and the owners directory.
#[utoipa::path(
    get, path = "/v1/admin/partitions", tag = "admin",
    responses(
        (status = 200, description = "This instance's partitions", body = PartitionsResponse),
        (status = 401, description = "`unauthorized`", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn partitions(State(state): State<AppState>) -> Response {
    let Some(view) = &state.partitions else {
        return Json(PartitionsResponse::default()).into_response();
    };
    let mut owned: Vec<LaneStatus> = view.owners.all().iter().map(|(_, lane)| lane.status()).collect();
    owned.sort_by_key(|status| status.partition);
    Json(PartitionsResponse {
        instance: view.instance.clone(),
        address: view.address.clone(),
        owned,
        standby: view.standbys.status(),
        directory: view.directory.snapshot(),
    })
    .into_response()
}
