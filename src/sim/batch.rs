//! `POST /$batch`: up to 20 requests in one (<https://learn.microsoft.com/en-us/graph/json-batching>).
//! Each inner request counts against the limits on its own and may be throttled on its
//! own: its entry then has status 429 and its own `Retry-After`, while the outer answer
//! is 200. Status faults (429, 503, 504) are rolled per inner request; connection
//! faults (drops, slowness, expired tokens) only for the outer one. Inner requests run
//! one after another in the order given, which satisfies any `dependsOn`.

use std::collections::HashSet;

use hyper::Method;
use serde_json::{Map, Value, json};

use super::graph::{
    Caller, Target, admit, dispatch, roll_fault, take_effect_late, takes_effect_late,
};
use super::odata::percent_decode;
use super::render::ApiVersion;
use super::reply::{Ctx, Kind, Reply, graph_error};
use super::server::{Outcome, Shared};

/// Graph's documented limit on requests in one batch.
pub const MAX_REQUESTS: usize = 20;

/// One inner request, as read from the batch body.
struct Inner {
    /// The client's id, echoed in the matching response.
    id: String,
    /// GET or POST, as for a request of its own.
    method: Method,
    /// Relative to the version (`/deviceManagement/...`), query included.
    url: String,
    /// The inner request's own `client-request-id` header, if it has one.
    client_request_id: Option<String>,
}

pub async fn run(
    shared: &Shared,
    ctx: &Ctx,
    version: ApiVersion,
    caller: &Caller<'_>,
    body: &[u8],
) -> Reply {
    let inner = match parse(body) {
        Ok(inner) => inner,
        Err(message) => return graph_error(ctx, Kind::Batch, 400, "BadRequest", &message),
    };
    let mut responses: Vec<Value> = Vec::with_capacity(inner.len());
    for request in &inner {
        let inner_ctx = Ctx {
            client_request_id: request
                .client_request_id
                .clone()
                .or_else(|| ctx.client_request_id.clone()),
            ..ctx.clone()
        };
        // An audit record names the inner request's own client-request-id, if it has one.
        let inner_caller = Caller {
            client_request_id: request.client_request_id.as_deref(),
            ..*caller
        };
        let reply = run_one(shared, &inner_ctx, version, &inner_caller, request).await;
        responses.push(entry(&request.id, &inner_ctx, &reply));
        let outcome = Outcome::answer(reply).in_tenant(shared.tenant_index(&caller.tenant.id));
        let method = request.method.as_str();
        shared.observe(
            &inner_ctx,
            method,
            &request.url,
            &outcome,
            Some(&ctx.request_id),
        );
    }
    Reply::new(200, Kind::Batch, Some(json!({ "responses": responses })))
}

/// One inner request: its own throttling and status faults, then its handler.
async fn run_one(
    shared: &Shared,
    ctx: &Ctx,
    version: ApiVersion,
    caller: &Caller<'_>,
    request: &Inner,
) -> Reply {
    let (path, query) = request.url.split_once('?').unwrap_or((&request.url, ""));
    let path = percent_decode(path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let target = Target::parse(&segments);
    if target == Target::Batch {
        return graph_error(
            ctx,
            Kind::Batch,
            400,
            "BadRequest",
            "A batch cannot contain a batch.",
        );
    }
    let fault = roll_fault(
        caller.tenant,
        &request.method,
        version,
        &segments,
        query,
        |k| !k.is_connection_level(),
    );
    let write = request.method != Method::GET;
    let now = shared.config.clock.now();
    match admit(shared, ctx, &target, caller, write, fault, now) {
        Some(refused) => refused,
        None => {
            if takes_effect_late(&target, &request.method, version) {
                take_effect_late(shared).await;
            }
            dispatch(
                shared,
                ctx,
                &request.method,
                version,
                &target,
                query,
                caller,
            )
        }
    }
}

fn entry(id: &str, ctx: &Ctx, reply: &Reply) -> Value {
    let mut headers = Map::new();
    if reply.has_body() {
        headers.insert("Content-Type".into(), "application/json".into());
    }
    headers.insert("request-id".into(), ctx.request_id.clone().into());
    if let Some(c) = &ctx.client_request_id {
        headers.insert("client-request-id".into(), c.clone().into());
    }
    for (name, value) in &reply.headers {
        headers.insert((*name).to_owned(), value.clone().into());
    }
    let mut entry = json!({"id": id, "status": reply.status, "headers": headers});
    if let Some(body) = reply.body_value() {
        entry["body"] = body;
    }
    entry
}

fn parse(body: &[u8]) -> Result<Vec<Inner>, String> {
    let document: Value =
        serde_json::from_slice(body).map_err(|_| "Invalid batch payload format.".to_owned())?;
    let requests = document
        .get("requests")
        .and_then(Value::as_array)
        .ok_or("Invalid batch payload format: 'requests' is missing.")?;
    if requests.is_empty() {
        return Err("The batch request must contain at least one request.".into());
    }
    if requests.len() > MAX_REQUESTS {
        return Err(format!(
            "Number of batch requests exceeds the limit of {MAX_REQUESTS}."
        ));
    }
    let mut seen = HashSet::new();
    requests
        .iter()
        .map(|r| {
            let field = |name: &str| r.get(name).and_then(Value::as_str);
            let id = field("id").ok_or("Each batch request needs an 'id'.")?;
            if !seen.insert(id.to_owned()) {
                return Err(format!("Batch request ids must be unique; '{id}' repeats."));
            }
            let method = field("method")
                .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                .ok_or_else(|| format!("Batch request '{id}' has no valid 'method'."))?;
            let url = field("url").ok_or_else(|| format!("Batch request '{id}' has no 'url'."))?;
            if url.starts_with("http://") || url.starts_with("https://") {
                return Err(format!("Batch request '{id}': the url must be relative to the version, like '/deviceManagement/managedDevices'."));
            }
            let client_request_id = r
                .get("headers")
                .and_then(Value::as_object)
                .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("client-request-id")))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_owned);
            Ok(Inner {
                id: id.to_owned(),
                method,
                url: url.to_owned(),
                client_request_id,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_checked_before_anything_runs() {
        let request = |id: usize| json!({"id": id.to_string(), "method": "POST", "url": "/deviceManagement/managedDevices/x/resetPasscode"});
        let ok = json!({"requests": (0..20).map(request).collect::<Vec<_>>()});
        assert_eq!(parse(ok.to_string().as_bytes()).map(|v| v.len()), Ok(20));
        let too_many = json!({"requests": (0..21).map(request).collect::<Vec<_>>()});
        assert!(parse(too_many.to_string().as_bytes()).is_err_and(|e| e.contains("limit of 20")));
        let twice = json!({"requests": [request(1), request(1)]});
        assert!(parse(twice.to_string().as_bytes()).is_err());
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"requests": []}"#).is_err());
    }
}
