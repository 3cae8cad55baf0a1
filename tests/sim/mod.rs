//! End-to-end tests of the simulator: the real server on `127.0.0.1:0`, driven over HTTP
//! with reqwest, with the clock advanced instead of slept where time matters.

mod audit;
mod auth;
mod command;
mod devices;
mod effects;
mod faults;
mod throttling;

use std::sync::Once;
use std::time::Duration;

use intune_reset::sim::{SimConfig, SimHandle, Simulator};
use serde_json::Value;

/// reqwest is built without a default TLS provider; plain http still needs one set.
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub async fn start(config: SimConfig) -> SimHandle {
    install_crypto();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Simulator::start(config, listener).unwrap()
}

pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub const SCOPE: &str = "https://graph.microsoft.com/.default";

/// A token for `app` with any secret.
pub async fn token(sim: &SimHandle, app: &str) -> String {
    let url = sim.token_url();
    let answer: Value = client()
        .post(url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app),
            ("client_secret", "s3cret"),
            ("scope", SCOPE),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

/// A Graph call; returns status, headers and the JSON body (`Null` when empty).
pub async fn call(
    sim: &SimHandle,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}{path}", sim.base_url())
    };
    let response = client()
        .request(method, url)
        .bearer_auth(token)
        .header("client-request-id", "00000000-1111-2222-3333-444444444444")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, headers, body)
}

pub async fn get(sim: &SimHandle, path: &str, token: &str) -> (u16, Value) {
    let (status, _, body) = call(sim, reqwest::Method::GET, path, token).await;
    (status, body)
}

pub async fn post(
    sim: &SimHandle,
    path: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    call(sim, reqwest::Method::POST, path, token).await
}

/// Intune's error message is a JSON document inside a string.
pub fn nested_message(body: &Value) -> Value {
    serde_json::from_str(body["error"]["message"].as_str().unwrap()).unwrap()
}

pub fn reset_path(id: &str) -> String {
    format!("/v1.0/deviceManagement/managedDevices/{id}/resetPasscode")
}

/// The ids of the simulator's devices, in list order.
pub fn device_ids(sim: &SimHandle) -> Vec<String> {
    sim.config()
        .inventory
        .devices()
        .iter()
        .map(|d| d.id.to_string())
        .collect()
}
