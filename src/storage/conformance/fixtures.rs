//! Records the checks start from.

use crate::config::SigningAlgorithm;
use crate::model::{
    AuthCodeRecord, CodeIssuance, RefreshFamilyRecord, RefreshTokenRecord, SessionRecord,
    SigningKeyRecord,
};

pub fn key(kid: &str, activates_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: SigningAlgorithm::ES256,
        private_key: vec![0, 1, 2, 255],
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        created_at: 1_000,
        activates_at,
    }
}

pub fn kids(keys: &[SigningKeyRecord]) -> Vec<&str> {
    keys.iter().map(|k| k.kid.as_str()).collect()
}

pub fn session(id: &str, sub: &str) -> SessionRecord {
    SessionRecord {
        id_hash: id.into(),
        sid: format!("sid-{id}"),
        sub: sub.into(),
        identity: "{}".into(),
        auth_time: 10,
        created_at: 10,
        expires_at: 1_000,
    }
}

pub fn code(hash: &str, client: &str) -> AuthCodeRecord {
    AuthCodeRecord {
        code_hash: hash.into(),
        client_id: client.into(),
        grant: "{}".into(),
        created_at: 1,
        expires_at: 61,
        redeemed_at: None,
        family_id: None,
        access_jti: None,
        access_exp: None,
        replayed_at: None,
    }
}

pub fn issuance(family: Option<&str>, jti: &str) -> CodeIssuance {
    CodeIssuance {
        family_id: family.map(str::to_string),
        access_jti: jti.into(),
        access_exp: 3_000,
    }
}

pub fn family(id: &str) -> RefreshFamilyRecord {
    RefreshFamilyRecord {
        id: id.into(),
        client_id: "web".into(),
        sub: "alice".into(),
        grant: "{}".into(),
        created_at: 1,
        absolute_expires_at: 10_000,
        revoked_at: None,
        sid: Some(format!("sid-{id}")),
    }
}

pub fn refresh(hash: &str, family_id: &str, jti: &str) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.into(),
        family_id: family_id.into(),
        created_at: 1,
        idle_expires_at: 5_000,
        rotated_at: None,
        access_jti: Some(jti.into()),
        access_exp: Some(3_000),
        successor_response: None,
    }
}
