//! A strict parser for minisign signature files, and the trusted-comment grammar.
//!
//! The reference tools accept things we must refuse (see the design reference §2.3):
//! extra lines, whitespace around base64, trailing bytes, non-canonical base64, legacy
//! `Ed` signatures. This parser accepts exactly four lines (LF or CRLF, the same
//! terminator on every line, nothing after line 4, no bare CR), canonical base64 that
//! decodes to exactly 74 and 64 bytes, algorithm `ED` only, and a trusted comment that
//! follows [`TrustedComment`]'s grammar. An accepted file re-serializes byte for byte.

use base64ct::{Base64, Encoding};

/// The largest `.minisig` file read.
pub const MAX_MINISIG_BYTES: usize = 16 * 1024;
/// The longest trusted comment we write or accept.
pub const MAX_TRUSTED_COMMENT: usize = 512;
/// The longest untrusted comment accepted (minisign's own limit).
pub const MAX_UNTRUSTED_COMMENT: usize = 1024;

const UNTRUSTED_PREFIX: &str = "untrusted comment: ";
const TRUSTED_PREFIX: &str = "trusted comment: ";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MinisigError {
    #[error("the signature file is {0} bytes, above the limit of {MAX_MINISIG_BYTES}")]
    TooLarge(usize),
    #[error("the signature file is not UTF-8 text")]
    NotUtf8,
    #[error("the signature file must have exactly 4 lines, each ending in LF or CRLF ({0})")]
    Lines(String),
    #[error("a bare CR is not a line ending")]
    BareCr,
    #[error("line 1 must start with `untrusted comment: ` and hold printable text")]
    UntrustedComment,
    #[error("line 3 must start with `trusted comment: `")]
    TrustedCommentPrefix,
    #[error("line {0} is not canonical base64 (no whitespace, padded, no stray bits)")]
    Base64(usize),
    #[error("line {line} decodes to {got} bytes, expected exactly {want}")]
    Length {
        line: usize,
        got: usize,
        want: usize,
    },
    #[error("legacy `Ed` (non-prehashed) signature: only `ED` is accepted")]
    Legacy,
    #[error("unknown signature algorithm `{0}`: only `ED` is accepted")]
    Algorithm(String),
    #[error("bad trusted comment: {0}")]
    Comment(#[from] CommentError),
}

/// A parsed `.minisig` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minisig {
    pub untrusted_comment: String,
    pub key_id: [u8; 8],
    pub signature: [u8; 64],
    pub trusted_comment: String,
    pub global_signature: [u8; 64],
    /// The file used CRLF line endings.
    pub crlf: bool,
}

/// Canonical standard base64 of `bytes`.
pub fn b64(bytes: &[u8]) -> String {
    Base64::encode_string(bytes)
}

/// Decodes canonical standard base64 only: the decoding must re-encode to `text`.
pub fn b64_strict(text: &str) -> Option<Vec<u8>> {
    let bytes = Base64::decode_vec(text).ok()?;
    (Base64::encode_string(&bytes) == text).then_some(bytes)
}

/// The minisign display form of a key id: `%016X` of the little-endian u64.
pub fn key_id_hex(key_id: &[u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(*key_id))
}

/// Parses the display form back (16 uppercase hex digits).
pub fn parse_key_id_hex(text: &str) -> Option<[u8; 8]> {
    if text.len() != 16 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
        return None;
    }
    u64::from_str_radix(text, 16).ok().map(u64::to_le_bytes)
}

fn printable_comment(text: &str) -> bool {
    text.len() <= MAX_UNTRUSTED_COMMENT && !text.chars().any(|c| c.is_control() && c != '\t')
}

impl Minisig {
    /// Parses a `.minisig` file strictly.
    pub fn parse(bytes: &[u8]) -> Result<Minisig, MinisigError> {
        if bytes.len() > MAX_MINISIG_BYTES {
            return Err(MinisigError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| MinisigError::NotUtf8)?;
        let crlf = text.split('\n').next().is_some_and(|l| l.ends_with('\r'));
        let terminator = if crlf { "\r\n" } else { "\n" };
        let Some(body) = text.strip_suffix(terminator) else {
            return Err(MinisigError::Lines(
                "the last line has no line ending".into(),
            ));
        };
        let lines: Vec<&str> = body.split(terminator).collect();
        if lines.len() != 4 {
            return Err(MinisigError::Lines(format!("found {}", lines.len())));
        }
        if lines.iter().any(|l| l.contains('\r') || l.contains('\n')) {
            return Err(MinisigError::BareCr);
        }
        let untrusted = lines[0]
            .strip_prefix(UNTRUSTED_PREFIX)
            .filter(|c| printable_comment(c))
            .ok_or(MinisigError::UntrustedComment)?;
        let sig = decode(lines[1], 2, 74)?;
        match &sig[..2] {
            b"ED" => {}
            b"Ed" => return Err(MinisigError::Legacy),
            other => {
                return Err(MinisigError::Algorithm(
                    String::from_utf8_lossy(other).into(),
                ));
            }
        }
        let trusted = lines[2]
            .strip_prefix(TRUSTED_PREFIX)
            .ok_or(MinisigError::TrustedCommentPrefix)?;
        check_comment_charset(trusted)?;
        let global = decode(lines[3], 4, 64)?;
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&sig[2..10]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&sig[10..74]);
        let mut global_signature = [0u8; 64];
        global_signature.copy_from_slice(&global);
        Ok(Minisig {
            untrusted_comment: untrusted.to_owned(),
            key_id,
            signature,
            trusted_comment: trusted.to_owned(),
            global_signature,
            crlf,
        })
    }

    /// The file's text: parsing it gives `self` back.
    pub fn to_text(&self) -> String {
        let nl = if self.crlf { "\r\n" } else { "\n" };
        let mut sig = Vec::with_capacity(74);
        sig.extend_from_slice(b"ED");
        sig.extend_from_slice(&self.key_id);
        sig.extend_from_slice(&self.signature);
        format!(
            "{UNTRUSTED_PREFIX}{}{nl}{}{nl}{TRUSTED_PREFIX}{}{nl}{}{nl}",
            self.untrusted_comment,
            b64(&sig),
            self.trusted_comment,
            b64(&self.global_signature)
        )
    }

    /// The file's text with LF endings (what `minisign-verify` reads).
    pub fn to_lf_text(&self) -> String {
        Minisig {
            crlf: false,
            ..self.clone()
        }
        .to_text()
    }

    /// The key id in minisign's display form.
    pub fn key_id_hex(&self) -> String {
        key_id_hex(&self.key_id)
    }
}

fn decode(line: &str, number: usize, want: usize) -> Result<Vec<u8>, MinisigError> {
    let bytes = b64_strict(line).ok_or(MinisigError::Base64(number))?;
    if bytes.len() != want {
        return Err(MinisigError::Length {
            line: number,
            got: bytes.len(),
            want,
        });
    }
    Ok(bytes)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommentError {
    #[error("longer than {MAX_TRUSTED_COMMENT} bytes")]
    TooLong,
    #[error(
        "only printable ASCII separated by single spaces is allowed, without leading or trailing whitespace"
    )]
    Charset,
    #[error("does not follow `v1 type=… manifest=… target=… seq=… exp=… role=…`: {0}")]
    Grammar(String),
}

/// Checks the trusted comment's charset: printable ASCII `0x21..=0x7E` separated by
/// single spaces, no leading or trailing space, at most [`MAX_TRUSTED_COMMENT`] bytes.
pub fn check_comment_charset(text: &str) -> Result<(), CommentError> {
    if text.len() > MAX_TRUSTED_COMMENT {
        return Err(CommentError::TooLong);
    }
    let ok = !text.is_empty()
        && text
            .split(' ')
            .all(|w| !w.is_empty() && w.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    if ok {
        Ok(())
    } else {
        Err(CommentError::Charset)
    }
}

/// What a signed statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    PlanStatement,
    TrustRoot,
    /// A published policy set (`policy-set.json`), signed by a policy publisher.
    PolicySet,
    /// A waivers file, signed by an approver.
    Waivers,
    /// An approver's override of soft-mandatory findings on one plan.
    Override,
}

impl StatementKind {
    pub const ALL: [StatementKind; 5] = [
        StatementKind::PlanStatement,
        StatementKind::TrustRoot,
        StatementKind::PolicySet,
        StatementKind::Waivers,
        StatementKind::Override,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::PlanStatement => "plan-statement",
            StatementKind::TrustRoot => "trust-root",
            StatementKind::PolicySet => "policy-set",
            StatementKind::Waivers => "waivers",
            StatementKind::Override => "override",
        }
    }

    pub fn parse(text: &str) -> Option<StatementKind> {
        StatementKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A role a key can hold in the trust root.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Root,
    PlanSigner,
    Approver,
    PolicyPublisher,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Root,
        Role::PlanSigner,
        Role::Approver,
        Role::PolicyPublisher,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::PlanSigner => "plan-signer",
            Role::Approver => "approver",
            Role::PolicyPublisher => "policy-publisher",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The trusted comment: an echo of the signed statement, cross-checked against it.
///
/// `v1 type=<plan-statement|trust-root|policy-set|waivers|override> manifest=<blake3> target=<target> seq=<n> exp=<unix> role=<role>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedComment {
    pub kind: StatementKind,
    pub manifest: String,
    pub target: String,
    pub seq: u64,
    pub exp: u64,
    pub role: Role,
}

/// Whether `s` is a non-empty identifier of `[a-z0-9._/-]`.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'/' | b'-'))
}

fn parse_int(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .filter(|v| *v <= crate::canonical::MAX_INT)
}

impl TrustedComment {
    /// Parses a trusted comment; the result prints back to exactly `text`.
    pub fn parse(text: &str) -> Result<TrustedComment, CommentError> {
        check_comment_charset(text)?;
        let bad = |what: &str| CommentError::Grammar(what.to_owned());
        let mut words = text.split(' ');
        if words.next() != Some("v1") {
            return Err(bad("it must start with `v1`"));
        }
        let mut field = |name: &str| -> Result<&str, CommentError> {
            words
                .next()
                .and_then(|w| w.strip_prefix(name))
                .and_then(|w| w.strip_prefix('='))
                .ok_or_else(|| CommentError::Grammar(format!("expected `{name}=…`")))
        };
        let kind = StatementKind::parse(field("type")?).ok_or_else(|| bad("unknown `type`"))?;
        let manifest = field("manifest")?;
        if !crate::hex::is_lower_hex(manifest, 64) {
            return Err(bad("`manifest` must be 64 lowercase hex digits"));
        }
        let target = field("target")?;
        if !is_identifier(target) {
            return Err(bad("`target` must be `[a-z0-9._/-]+`"));
        }
        let seq = parse_int(field("seq")?).ok_or_else(|| bad("`seq` must be an integer"))?;
        let exp = parse_int(field("exp")?).ok_or_else(|| bad("`exp` must be an integer"))?;
        let role = Role::parse(field("role")?).ok_or_else(|| bad("unknown `role`"))?;
        let (manifest, target) = (manifest.to_owned(), target.to_owned());
        if words.next().is_some() {
            return Err(bad("unexpected words after `role`"));
        }
        Ok(TrustedComment {
            kind,
            manifest,
            target,
            seq,
            exp,
            role,
        })
    }
}

impl std::fmt::Display for TrustedComment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "v1 type={} manifest={} target={} seq={} exp={} role={}",
            self.kind.as_str(),
            self.manifest,
            self.target,
            self.seq,
            self.exp,
            self.role
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn key_id_display_is_little_endian() {
        let id = [0x21, 0x74, 0xE2, 0xDC, 0x6E, 0x7E, 0xD7, 0x8D];
        assert_eq!(key_id_hex(&id), "8DD77E6EDCE27421");
        assert_eq!(parse_key_id_hex("8DD77E6EDCE27421"), Some(id));
    }

    #[test]
    fn trusted_comment_round_trips() {
        let text = format!(
            "v1 type=plan-statement manifest={} target=prod seq=7 exp=100 role=approver",
            "a".repeat(64)
        );
        let tc = TrustedComment::parse(&text).unwrap();
        assert_eq!(tc.to_string(), text);
        assert!(TrustedComment::parse(&text.replace("seq=7", "seq=07")).is_err());
        assert!(TrustedComment::parse(&format!("{text} ")).is_err());
        assert!(TrustedComment::parse(&text.replace(' ', "  ")).is_err());
    }

    #[test]
    fn golden_vector_is_refused_for_its_comment_only() {
        // The prehashed vector of rust-minisign-verify: structurally valid, but its
        // trusted comment has a tab, which our grammar refuses.
        let text = "untrusted comment: signature from minisign secret key\nRUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=\ntrusted comment: timestamp:1556193335\tfile:test\ny/rUw2y8/hOUYjZU71eHp/Wo1KZ40fGy2VJEDl34XMJM+TX48Ss/17u3IvIfbVR1FkZZSNCisQbuQY+bHwhEBg==\n";
        assert_eq!(
            Minisig::parse(text.as_bytes()),
            Err(MinisigError::Comment(CommentError::Charset))
        );
        let legacy = "untrusted comment: x\nRWQf6LRCGA9i59SLOFxz6NxvASXDJeRtuZykwQepbDEGt87ig1BNpWaVWuNrm73YiIiJbq71Wi+dP9eKL8OC351vwIasSSbXxwA=\ntrusted comment: a\nQtKMXWyYcwdpZAlPF7tE2ENJkRd1ujvKjlj1m9RtHTBnZPa5WKU5uWRs5GoP5M/VqE81QFuMKI5k/SfNQUaOAA==\n";
        assert_eq!(Minisig::parse(legacy.as_bytes()), Err(MinisigError::Legacy));
    }
}
