//! `POST /mock/tokens`: tokens minted on request, through the same token code as the real
//! flows, optionally with a deliberate defect for negative tests.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::ControlError;
use super::state::Control;
use crate::oidc::grant::Grant;
use crate::oidc::grants::{Overrides, TokenResponse};
use crate::secret::b64url;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Defect {
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    UnknownKid,
    BadSignature,
    AlgNone,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    pub sub: Option<String>,
    pub client_id: Option<String>,
    #[serde(default)]
    pub claims: Map<String, Value>,
    pub groups: Option<Vec<String>>,
    pub scope: Option<String>,
    /// Seconds; may be negative for a token that is already expired.
    pub expires_in: Option<i64>,
    /// Seconds added to `iat` (negative: issued in the past).
    pub iat_offset: Option<i64>,
    pub defect: Option<Defect>,
}

fn decode(part: &str) -> Option<Value> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Applies a signature-level defect to a compact JWS we signed.
fn spoil(control: &Control, token: &str, defect: Defect) -> Result<String, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not a compact JWS".into());
    };
    let mut header = decode(h)
        .and_then(|v| v.as_object().cloned())
        .ok_or("bad header")?;
    let mut claims = decode(p).ok_or("bad payload")?;
    let keys = &control.keys;
    let resign = |header: &Map<String, Value>, claims: &Value| {
        keys.sign_with_header(header, claims)
            .map_err(|e| e.to_string())
    };
    match defect {
        Defect::WrongIssuer => {
            claims["iss"] = json!(format!("{}/not-the-issuer", control.mock.issuer));
            resign(&header, &claims)
        }
        Defect::WrongAudience => {
            claims["aud"] = json!("someone-else");
            resign(&header, &claims)
        }
        Defect::UnknownKid => {
            header.insert(
                "kid".into(),
                json!(format!("unknown-{}", crate::secret::random_token(6))),
            );
            resign(&header, &claims)
        }
        Defect::BadSignature => {
            use base64::Engine as _;
            let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(sig)
                .map_err(|e| e.to_string())?;
            if let Some(b) = raw.first_mut() {
                *b ^= 0x01;
            }
            Ok(format!("{h}.{p}.{}", b64url(&raw)))
        }
        Defect::AlgNone => {
            header.insert("alg".into(), json!("none"));
            header.remove("kid");
            Ok(format!(
                "{}.{p}.",
                b64url(Value::Object(header).to_string().as_bytes())
            ))
        }
        Defect::Expired | Defect::NotYetValid => Ok(token.to_string()),
    }
}

/// The identity, client and scope a mint request names.
fn grant_of(control: &Control, req: &MintRequest, client_id: &str, iat: i64) -> Grant {
    let username = req.sub.clone().unwrap_or_else(|| "user".into());
    let mut identity = control
        .mock
        .identity(&username, req.groups.clone(), &req.claims);
    if let Some(sub) = &req.sub {
        identity.sub = sub.as_str().into();
    }
    let scope = req
        .scope
        .as_deref()
        .unwrap_or("openid profile email")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Grant {
        sub: identity.sub.clone(),
        client_id: client_id.into(),
        scope,
        redirect_uri: Default::default(),
        nonce: None,
        code_challenge: None,
        auth_time: iat,
        sid: None,
        claims: None,
        identity,
        resources: Vec::new(),
        act: None,
    }
}

/// The request's time and lifetime as issuance overrides, and its time defects.
fn overrides_for(req: &MintRequest, now: i64, default_lifetime: i64) -> Overrides {
    let mut o = Overrides {
        lifetime: Some(req.expires_in.unwrap_or(default_lifetime)),
        issued_at: Some(now + req.iat_offset.unwrap_or(0)),
        claims: Map::new(),
        id_token_always: true,
        no_id_token: false,
    };
    match req.defect {
        Some(Defect::Expired) => {
            let lifetime = o.lifetime.unwrap_or(1).abs().max(1);
            o.lifetime = Some(lifetime);
            o.issued_at = Some(now - lifetime - 60);
        }
        Some(Defect::NotYetValid) => {
            o.issued_at = Some(now + 3600);
            o.claims.insert("nbf".into(), json!(now + 3600));
        }
        _ => {}
    }
    o
}

/// Both tokens spoiled for a signature-level defect (time defects are in the claims).
fn spoiled(
    control: &Control,
    mut response: TokenResponse,
    defect: Option<Defect>,
) -> Result<TokenResponse, ControlError> {
    let Some(d) = defect else {
        return Ok(response);
    };
    if let Some(id_token) = &response.id_token {
        response.id_token =
            Some(spoil(control, id_token, d).map_err(|e| ControlError::internal(&e))?);
    }
    response.access_token =
        spoil(control, &response.access_token, d).map_err(|e| ControlError::internal(&e))?;
    Ok(response)
}

/// Mints through the OP's own issuance (with the request's time and lifetime), stores the
/// identity so that userinfo and refresh find it, then spoils the result for a defect.
pub async fn mint(control: &Control, req: MintRequest) -> Result<Value, ControlError> {
    if !control.keys.wait_active().await {
        return Err(ControlError::unavailable("no signing key is available yet"));
    }
    let client_id = req
        .client_id
        .clone()
        .unwrap_or_else(|| super::BUILTIN_CLIENT_ID.into());
    let client = control
        .clients
        .get(&client_id)
        .ok_or_else(|| ControlError::bad_request(format!("unknown client_id `{client_id}`")))?;
    let now = control.mock.clock.current();
    let overrides = overrides_for(&req, now, control.grants.access_lifetime(&client));
    let grant = grant_of(
        control,
        &req,
        &client_id,
        overrides.issued_at.unwrap_or(now),
    );
    let identity_json =
        serde_json::to_string(&grant.identity).map_err(|e| ControlError::internal(&e))?;
    control
        .storage
        .put_identity(&grant.sub, &identity_json, now)
        .await
        .map_err(|e| ControlError::storage(&e))?;
    let issued = control
        .grants
        .issue_with(&client, &grant, false, None, &overrides)
        .map_err(|e| ControlError::internal(&e.description))?;
    let refresh_token = if client.allows_grant(crate::config::GrantType::RefreshToken) {
        let family = crate::secret::random_token(16);
        let access = (issued.access_jti.as_str(), issued.access_exp);
        Some(
            control
                .grants
                .new_family(&client, &grant, &family, access, None)
                .await
                .map_err(|e| ControlError::unavailable(e.description))?,
        )
    } else {
        None
    };
    let response = spoiled(control, issued.response, req.defect)?;
    control.grants.issued(
        "token_minted",
        "mock",
        &client_id,
        &grant.sub,
        &issued.access_jti,
        response.expires_in,
    );
    Ok(json!({
        "id_token": response.id_token,
        "access_token": response.access_token,
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": response.expires_in,
        "scope": response.scope,
    }))
}
