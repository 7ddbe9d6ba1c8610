//! Signed statements other than plans and trust roots (published policy sets,
//! waivers files, approver overrides): one `.minisig` over the exact bytes, made by a
//! key that the trust root lists with the statement's role, with a trusted comment
//! that echoes the statement (kind, blake3 of the bytes, name, version, expiry, role).
//!
//! The same strict machinery as manifests: the strict `.minisig` parser, prehashed
//! `ED` signatures verified twice ([`crate::sign::verify_signature`]), and the
//! trusted-comment grammar of [`TrustedComment`].

use crate::keys::{PublicKey, SecretKey};
use crate::minisig::{Minisig, Role, StatementKind, TrustedComment};
use crate::sign::{SignError, verify_signature};
use crate::trust::TrustRoot;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatementError {
    #[error("the signature file does not parse: {0}")]
    Parse(String),
    #[error("it is signed by key {0}, which the trust root does not list")]
    UnknownKey(String),
    #[error("the signature by key {key} does not verify: {reason}")]
    BadSignature { key: String, reason: String },
    #[error(
        "it is signed by key {key}, which does not hold the `{wanted}` role in the trust root (its roles: {roles})"
    )]
    WrongRole {
        key: String,
        wanted: Role,
        roles: String,
    },
    #[error("the trusted comment `{found}` does not echo the statement: expected `{expected}`")]
    Comment { found: String, expected: String },
}

/// The trusted comment of a statement of `kind` over `bytes`.
pub fn trusted_comment(
    kind: StatementKind,
    bytes: &[u8],
    name: &str,
    version: u64,
    exp: u64,
    role: Role,
) -> TrustedComment {
    TrustedComment {
        kind,
        manifest: crate::blake3_hex(bytes),
        target: name.to_owned(),
        seq: version,
        exp,
        role,
    }
}

/// Signs `bytes` as a statement; the signature is verified before it is returned.
pub fn sign_statement(
    key: &SecretKey,
    bytes: &[u8],
    comment: &TrustedComment,
) -> Result<Minisig, SignError> {
    crate::sign::sign(key, bytes, comment)
}

/// Verifies one statement signature against the trust root: the signing key is listed,
/// the signature verifies, the key holds `expected.role`, and the trusted comment is
/// exactly `expected`. Returns the signing key.
pub fn verify_statement(
    trust: &TrustRoot,
    bytes: &[u8],
    sig_bytes: &[u8],
    expected: &TrustedComment,
) -> Result<PublicKey, StatementError> {
    let sig = Minisig::parse(sig_bytes).map_err(|e| StatementError::Parse(e.to_string()))?;
    let mut last = None;
    let mut verified = None;
    for (pk, roles) in trust.candidates(&sig.key_id) {
        match verify_signature(pk, bytes, &sig) {
            Ok(()) => {
                verified = Some((*pk, roles.clone()));
                break;
            }
            Err(err) => last = Some(err),
        }
    }
    let Some((pk, roles)) = verified else {
        return Err(match last {
            None => StatementError::UnknownKey(sig.key_id_hex()),
            Some(err) => StatementError::BadSignature {
                key: sig.key_id_hex(),
                reason: err.to_string(),
            },
        });
    };
    if !roles.contains(&expected.role) {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        return Err(StatementError::WrongRole {
            key: pk.key_id_hex(),
            wanted: expected.role,
            roles: roles.join(", "),
        });
    }
    let wanted = expected.to_string();
    if sig.trusted_comment != wanted {
        return Err(StatementError::Comment {
            found: sig.trusted_comment,
            expected: wanted,
        });
    }
    Ok(pk)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::collections::BTreeMap;

    use super::*;
    use crate::trust::{RoleSpec, TRUST_ROOT_TYPE, TrustRootDoc, TrustedKey};

    fn root(keys: &[(&SecretKey, Role)]) -> TrustRoot {
        let mut listed: Vec<TrustedKey> = keys
            .iter()
            .map(|(k, r)| TrustedKey {
                public_key: k.public().to_base64(),
                roles: vec![*r],
                comment: String::new(),
            })
            .collect();
        listed.sort_by(|a, b| a.public_key.cmp(&b.public_key));
        let doc = TrustRootDoc {
            type_: TRUST_ROOT_TYPE.into(),
            version: 1,
            expires_at: 1 << 40,
            keys: listed,
            roles: Role::ALL
                .into_iter()
                .map(|r| (r, RoleSpec { threshold: 0 }))
                .collect::<BTreeMap<_, _>>(),
        };
        let bytes = crate::canonical::to_canonical(&doc).unwrap();
        let keys = doc
            .keys
            .iter()
            .map(|k| {
                (
                    PublicKey::from_base64(&k.public_key).unwrap(),
                    k.roles.clone(),
                )
            })
            .collect();
        TrustRoot {
            doc,
            blake3: crate::blake3_hex(&bytes),
            bytes,
            keys,
        }
    }

    #[test]
    fn verifies_role_and_comment() {
        let publisher = SecretKey::generate().unwrap();
        let approver = SecretKey::generate().unwrap();
        let trust = root(&[
            (&publisher, Role::PolicyPublisher),
            (&approver, Role::Approver),
        ]);
        let bytes = b"{\"set\":1}";
        let tc = trusted_comment(
            StatementKind::PolicySet,
            bytes,
            "acme",
            3,
            9,
            Role::PolicyPublisher,
        );
        let sig = sign_statement(&publisher, bytes, &tc).unwrap().to_text();
        assert!(verify_statement(&trust, bytes, sig.as_bytes(), &tc).is_ok());
        assert!(matches!(
            verify_statement(&trust, b"{\"set\":2}", sig.as_bytes(), &tc),
            Err(StatementError::BadSignature { .. })
        ));
        let older = trusted_comment(
            StatementKind::PolicySet,
            bytes,
            "acme",
            2,
            9,
            Role::PolicyPublisher,
        );
        assert!(matches!(
            verify_statement(&trust, bytes, sig.as_bytes(), &older),
            Err(StatementError::Comment { .. })
        ));
        let by_approver = sign_statement(&approver, bytes, &tc).unwrap().to_text();
        assert!(matches!(
            verify_statement(&trust, bytes, by_approver.as_bytes(), &tc),
            Err(StatementError::WrongRole { .. })
        ));
        let stranger = SecretKey::generate().unwrap();
        let by_stranger = sign_statement(&stranger, bytes, &tc).unwrap().to_text();
        assert!(matches!(
            verify_statement(&trust, bytes, by_stranger.as_bytes(), &tc),
            Err(StatementError::UnknownKey(_))
        ));
    }
}
