//! Schema registry access (Confluent-compatible API, served by Apicurio Registry locally).

use std::time::Duration;

use crate::config::RegistryArgs;

/// The readiness probe: the registry lists its subjects.
///
/// # Errors
/// A message saying what failed.
pub async fn ping(http: &reqwest::Client, args: &RegistryArgs) -> Result<(), String> {
    let url = format!("{}/subjects", args.url.trim_end_matches('/'));
    let response = http
        .get(&url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| format!("schema registry unreachable: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("schema registry answered {}", response.status()))
    }
}
