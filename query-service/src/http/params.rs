//! What the read routes share: query parameters that report every bad one, the
//! read-your-writes position (query or header) and its bounded wait, and conditional requests
//! (`ETag` / `If-None-Match` → 304).

use std::time::Instant;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use holdfast_domain::{CapacityRange, Slot};

use super::AppState;
use super::problem::{FieldError, Problem, ProblemType};
use crate::position::Position;
use crate::read::Source;
use crate::watermarks::{Need, NotReached};

/// Header that carries a read-your-writes position (same token as `?min_position=`).
pub const MIN_POSITION_HEADER: &str = "min-position";
/// `Vary` of answers that honour [`MIN_POSITION_HEADER`].
pub const VARY: &str = "Min-Position";

/// The query string as name/value pairs; the first of repeated names counts.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The parsed query, or the error a malformed one makes.
    pub fn from_query(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    ) -> Result<Self, FieldError> {
        query.map(|Query(pairs)| Self(pairs)).map_err(|e| FieldError::new("query", e.body_text()))
    }

    /// Records an error for every parameter not among `known`: a misspelt `min_position` must
    /// not quietly read without waiting, nor a misspelt `limit` return another page size.
    pub fn only(&self, known: &[&str], errors: &mut Vec<FieldError>) {
        let mut unknown: Vec<&str> = Vec::new();
        for (name, _) in &self.0 {
            if !known.contains(&name.as_str()) && !unknown.contains(&name.as_str()) {
                unknown.push(name);
                errors.push(FieldError::new(name, format!("unknown parameter; known: {}", known.join(", "))));
            }
        }
    }

    /// The value of `name`, if given.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// `from` and `to` (required): a range of 1 to 366 days; errors name each bad parameter.
    pub fn range(&self, errors: &mut Vec<FieldError>) -> Option<CapacityRange> {
        let (from, to) = (self.required_day("from", errors), self.required_day("to", errors));
        range(from?, to?, errors)
    }

    /// The day in parameter `name`, or `fallback` when it is absent; an invalid day is
    /// reported in `errors`.
    pub fn day_or(
        &self,
        name: &'static str,
        fallback: Option<Slot>,
        errors: &mut Vec<FieldError>,
    ) -> Option<Slot> {
        match self.get(name) {
            None => fallback,
            Some(raw) => Slot::parse(raw).map_err(|e| errors.push(FieldError::new(name, e.reason))).ok(),
        }
    }

    fn required_day(&self, name: &'static str, errors: &mut Vec<FieldError>) -> Option<Slot> {
        if self.get(name).is_none() {
            errors.push(FieldError::new(name, "required: a day as YYYY-MM-DD"));
        }
        self.day_or(name, None, errors)
    }

    /// The read-your-writes position from `?min_position=` or the `Min-Position` header (the
    /// query wins); both are checked, so a bad header is refused even next to a good query. An
    /// empty header counts as absent.
    pub fn min_position(
        &self,
        headers: &HeaderMap,
        partitions: i32,
        errors: &mut Vec<FieldError>,
    ) -> Option<Position> {
        let mut parse = |field: &'static str, raw: &str| {
            Position::parse(raw.trim(), partitions)
                .map_err(|reason| errors.push(FieldError::new(field, reason)))
                .ok()
        };
        let from_query = self.get("min_position").and_then(|raw| parse("min_position", raw));
        let from_header = match headers.get(MIN_POSITION_HEADER).map(HeaderValue::to_str) {
            // An empty header (as some proxies and clients send) names no position.
            None | Some(Ok("")) => None,
            Some(Ok(raw)) => parse("Min-Position", raw),
            Some(Err(_)) => {
                errors.push(FieldError::new("Min-Position", "must be visible ASCII"));
                None
            }
        };
        from_query.or(from_header)
    }
}

/// `[from, to)` as a range of 1 to 366 days, or the error in `errors`.
pub fn range(from: Slot, to: Slot, errors: &mut Vec<FieldError>) -> Option<CapacityRange> {
    CapacityRange::new(from, to).map_err(|e| errors.push(FieldError::new(e.field, e.reason))).ok()
}

/// Waits (bounded) until a source usable for `need` reached `wanted`; the source to read from.
/// Without a position, Redis is preferred. A `client` may park only so many waits at once
/// (429 beyond).
pub async fn reach(
    state: &AppState,
    client: &str,
    wanted: Option<Position>,
    need: Need,
    path: &str,
) -> Result<Source, Problem> {
    let Some(wanted) = wanted else { return Ok(Source::Redis) };
    let metrics = &state.metrics;
    if let Some(source) = state.watermarks.reached(wanted, need) {
        metrics.waits.with_label_values(&["immediate"]).inc();
        return Ok(source);
    }
    // A parked wait holds a place in the watermark watcher: each client has a few.
    let Some(_parked) = state.client_waits.take(client) else {
        let detail = "this client has as many read-your-writes waits parked as it may; retry shortly";
        return Err(Problem::new(ProblemType::RateLimited, detail, path).retry_after(1));
    };
    let started = Instant::now();
    let outcome = state.watermarks.wait(wanted, need, state.settings.max_wait).await;
    let label = if outcome.is_ok() { "waited" } else { "timeout" };
    metrics.waits.with_label_values(&[label]).inc();
    metrics.wait_seconds.with_label_values(&[label]).observe(started.elapsed().as_secs_f64());
    outcome.map_err(|NotReached(_)| not_reached(wanted, path))
}

/// 503 `position-not-reached` for `wanted`.
#[must_use]
pub fn not_reached(wanted: Position, path: &str) -> Problem {
    let detail = format!("the read model has not reached position {wanted} yet; retry shortly");
    let mut problem = Problem::new(ProblemType::PositionNotReached, detail, path).retry_after(1);
    problem.min_position = Some(wanted.to_string());
    problem
}

/// 503 `unavailable` or 500 `internal` for a failed read.
#[must_use]
pub fn read_failed(error: &crate::read::ReadError, path: &str) -> Problem {
    match error {
        crate::read::ReadError::Postgres(cause) => {
            tracing::warn!(%cause, path, "read model unreachable");
            Problem::new(ProblemType::Unavailable, "the read model cannot be read right now", path)
                .retry_after(1)
        }
        crate::read::ReadError::Corrupt(_) => Problem::internal(error, path),
    }
}

/// A weak entity tag (the representation also carries a position that may differ while the
/// data is the same, so the tag promises semantic, not byte, equality).
#[must_use]
pub fn etag(tag: &str) -> String {
    format!("W/\"{tag}\"")
}

/// Whether `If-None-Match` matches `etag` (weak comparison, lists and `*` included).
#[must_use]
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let wanted = opaque(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|value| value.split(',').any(|candidate| candidate.trim() == "*" || opaque(candidate) == wanted))
}

/// A 200 JSON answer, or 304 when the client has it, with caching headers.
pub fn cached_json<T: serde::Serialize>(
    headers: &HeaderMap,
    etag: &str,
    cache_control: &'static str,
    body: &T,
    extra: &[(&'static str, &str)],
) -> Response {
    let mut response = if not_modified(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        axum::Json(body).into_response()
    };
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, value);
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    out.insert(header::VARY, HeaderValue::from_static(VARY));
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(*name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_understands_lists() {
        let tag = etag("42");
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(value));
            not_modified(&headers, &tag)
        };
        assert!(with(r#"W/"42""#));
        assert!(with(r#""42""#));
        assert!(with(r#"W/"1", W/"42""#));
        assert!(with("*"));
        assert!(!with(r#"W/"43""#));
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }

    #[test]
    fn unknown_parameters_are_reported_once_each() {
        let params = Params(
            [("min_postion", "0.1"), ("from", "x"), ("min_postion", "0.2"), ("x", "")]
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        );
        let mut errors = Vec::new();
        params.only(&["from", "to", "min_position"], &mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["min_postion", "x"]);
    }

    #[test]
    fn positions_come_from_query_or_header_and_both_are_checked() {
        let position = |query: Option<&str>, header: Option<&'static str>| {
            let params =
                Params(query.map(|q| ("min_position".to_owned(), q.to_owned())).into_iter().collect());
            let mut headers = HeaderMap::new();
            if let Some(value) = header {
                headers.insert(MIN_POSITION_HEADER, HeaderValue::from_static(value));
            }
            let mut errors = Vec::new();
            let found = params.min_position(&headers, 4, &mut errors).map(|p| p.to_string());
            (found, errors.into_iter().map(|e| e.field).collect::<Vec<_>>())
        };
        let ok = |p: &str| (Some(p.to_owned()), Vec::<String>::new());
        assert_eq!(position(None, None), (None, vec![]));
        assert_eq!(position(Some("1.5"), None), ok("1.5"));
        assert_eq!(position(None, Some("2.7")), ok("2.7"));
        assert_eq!(position(Some("1.5"), Some("2.7")), ok("1.5"), "the query wins");
        assert_eq!(position(None, Some("")), (None, vec![]), "an empty header is absent");
        assert_eq!(position(Some("1.5"), Some("{}")).1, ["Min-Position"], "a bad header is refused");
        assert_eq!(position(Some("9.5"), None).1, ["min_position"], "no partition 9");
    }

    #[test]
    fn ranges_report_each_bad_parameter() {
        let params = |pairs: &[(&str, &str)]| {
            Params(pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect())
        };
        let fields = |pairs: &[(&str, &str)]| {
            let mut errors = Vec::new();
            let range = params(pairs).range(&mut errors);
            (range.map(|r| r.len()), errors.into_iter().map(|e| e.field).collect::<Vec<_>>())
        };
        assert_eq!(fields(&[("from", "2031-03-01"), ("to", "2031-03-03")]), (Some(2), vec![]));
        assert_eq!(fields(&[]), (None, vec!["from".to_owned(), "to".to_owned()]));
        assert_eq!(
            fields(&[("from", "2031-02-30"), ("to", "x")]),
            (None, vec!["from".to_owned(), "to".to_owned()])
        );
        assert_eq!(fields(&[("from", "2031-03-03"), ("to", "2031-03-03")]), (None, vec!["to".to_owned()]));
        assert_eq!(fields(&[("from", "2031-01-01"), ("to", "2032-01-03")]), (None, vec!["to".to_owned()]));
    }
}
