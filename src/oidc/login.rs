//! `POST /login`: the local username and password form. Failed attempts are throttled per
//! username and per client IP.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::authorize::{AuthorizeError, Flows};
use super::params::HtmlForm;

pub async fn post(
    State(flows): State<Arc<Flows>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<HtmlForm, Response>,
) -> Response {
    let form = match form {
        Ok(HtmlForm(f)) => f,
        Err(resp) => return resp,
    };
    let (record, req) = match flows.load_pending(&headers, &form).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let Some(client) = flows.clients.get(&req.client_id) else {
        return flows.fail(AuthorizeError::page(
            "The application is no longer registered.",
        ));
    };
    let username = form.get("username").unwrap_or("").trim().to_string();
    let password = form.get("password").unwrap_or("");
    let ip = peer.ip().to_string();
    let now = flows.clock.now();

    if let Some(mock) = flows.mock.as_ref().filter(|m| m.mock_login) {
        let claims = match form
            .get("claims")
            .map(serde_json::from_str::<serde_json::Value>)
        {
            None => serde_json::Map::new(),
            Some(Ok(serde_json::Value::Object(m))) => m,
            Some(_) => {
                return flows.login_page(
                    &client,
                    &record,
                    &username,
                    Some(
                        "Extra claims must be a JSON object, like {\"department\": \"QA\"}.".into(),
                    ),
                    StatusCode::BAD_REQUEST,
                    Vec::new(),
                );
            }
        };
        if username.is_empty()
            || username.len() > 255
            || !username.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return flows.login_page(
                &client,
                &record,
                &username,
                Some("Enter a username of printable ASCII characters, without spaces.".into()),
                StatusCode::BAD_REQUEST,
                Vec::new(),
            );
        }
        let groups = form.get("groups").map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let identity = match mock.take_queued(Some(&username), client.id()) {
            Some(q) => mock.queued_identity(&q, &username),
            None => mock.identity(&username, groups, &claims),
        };
        return finish_login(&flows, &headers, record, req, &client, identity).await;
    }

    if let Some(wait) = flows.throttle.blocked_for(&username, &ip, now) {
        let minutes = (wait + 59) / 60;
        return flows.login_page(
            &client,
            &record,
            &username,
            Some(format!(
                "Too many failed sign-in attempts. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            )),
            StatusCode::TOO_MANY_REQUESTS,
            Vec::new(),
        );
    }
    let identity = match flows.users.authenticate(&username, password).await {
        Some(id) => id,
        None => {
            flows.throttle.record_failure(&username, &ip, now);
            tracing::info!(
                event = "login_failed",
                client_id = client.id(),
                "wrong username or password"
            );
            return flows.login_page(
                &client,
                &record,
                &username,
                Some("Wrong username or password.".into()),
                StatusCode::UNAUTHORIZED,
                Vec::new(),
            );
        }
    };
    flows.throttle.record_success(&username);
    finish_login(&flows, &headers, record, req, &client, identity).await
}

async fn finish_login(
    flows: &Flows,
    headers: &HeaderMap,
    mut record: crate::model::AuthRequestRecord,
    mut req: super::authorize::AuthRequest,
    client: &super::clients::Client,
    identity: super::identity::Identity,
) -> Response {
    let (session, cookie) = match flows.start_session(headers, &identity).await {
        Ok(x) => x,
        Err(e) => return flows.fail(AuthorizeError::internal(&e)),
    };
    tracing::info!(event = "login", client_id = client.id(), sub = %session.sub, "user signed in");
    req.login_done = true;
    record.session_id = Some(session.id_hash.clone());
    flows
        .proceed(headers, req, Some(record), Some(session), vec![cookie])
        .await
        .unwrap_or_else(|e| flows.fail(e))
}
