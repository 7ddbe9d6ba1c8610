//! minisign-format Ed25519 keys, generated and read by our own code.
//!
//! Public key: `"Ed" ‖ keynum[8] ‖ pk[32]`. Secret key (158 bytes): `"Ed" ‖ kdf ("Sc" or
//! `\0\0`) ‖ "B2" ‖ salt[32] ‖ opslimit u64le ‖ memlimit u64le ‖ (keynum[8] ‖ sk[64] ‖
//! chk[32]) XOR scrypt-stream`, with `chk = BLAKE2b-256("Ed" ‖ keynum ‖ sk)`. Unencrypted
//! keys carry a valid checksum (unlike `minisign -G -W`, see design finding 3).

use blake2::Digest as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::minisig::{b64, b64_strict, key_id_hex};

/// scrypt parameters written for encrypted keys (the minisign crate's defaults).
pub const OPSLIMIT: u64 = 1_048_576;
pub const MEMLIMIT: u64 = 33_554_432;
/// The most memory a key may ask scrypt for (1 GiB) and the largest `log2(N)`.
pub const MEMLIMIT_MAX: u64 = 1 << 30;
const N_LOG2_MAX: u8 = 20;
/// The largest key file read.
pub const MAX_KEY_FILE_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a minisign public key file (`untrusted comment: …` then one base64 line)")]
    PublicKeyFormat,
    #[error("the public key is not canonical base64 of 42 bytes")]
    PublicKeyEncoding,
    #[error("the public key's algorithm is `{0}`, only `Ed` is accepted")]
    PublicKeyAlgorithm(String),
    #[error("the public key is not a valid Ed25519 point")]
    PublicKeyPoint,
    #[error("not a minisign secret key file")]
    SecretKeyFormat,
    #[error("unsupported key algorithms (signature `{sig}`, kdf `{kdf}`, checksum `{chk}`)")]
    SecretKeyAlgorithm {
        sig: String,
        kdf: String,
        chk: String,
    },
    #[error("the secret key is encrypted and no password was given")]
    PasswordNeeded,
    #[error("wrong password for that key")]
    WrongPassword,
    #[error(
        "corrupted key: its checksum does not match (an unencrypted key from `minisign -G -W` has none)"
    )]
    Corrupted,
    #[error("scrypt parameters too high (opslimit {ops}, memlimit {mem})")]
    ScryptTooHigh { ops: u64, mem: u64 },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// A minisign public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: [u8; 8],
    pub key: [u8; 32],
}

impl PublicKey {
    /// Parses the base64 form (`RWQ…`, 56 characters), strictly: algorithm `Ed` only.
    pub fn from_base64(text: &str) -> Result<PublicKey, KeyError> {
        let bytes = b64_strict(text).ok_or(KeyError::PublicKeyEncoding)?;
        if bytes.len() != 42 {
            return Err(KeyError::PublicKeyEncoding);
        }
        if &bytes[..2] != b"Ed" {
            return Err(KeyError::PublicKeyAlgorithm(
                String::from_utf8_lossy(&bytes[..2]).into_owned(),
            ));
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&bytes[2..10]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[10..42]);
        VerifyingKey::from_bytes(&key).map_err(|_| KeyError::PublicKeyPoint)?;
        Ok(PublicKey { key_id, key })
    }

    /// Parses a `.pub` file: an `untrusted comment:` line, then the base64 line.
    pub fn from_file_text(text: &str) -> Result<PublicKey, KeyError> {
        let mut lines = text.lines();
        let comment = lines.next().ok_or(KeyError::PublicKeyFormat)?;
        if !comment.starts_with("untrusted comment:") {
            return Err(KeyError::PublicKeyFormat);
        }
        let key = lines.next().ok_or(KeyError::PublicKeyFormat)?;
        if lines.any(|l| !l.is_empty()) {
            return Err(KeyError::PublicKeyFormat);
        }
        PublicKey::from_base64(key)
    }

    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::with_capacity(42);
        bytes.extend_from_slice(b"Ed");
        bytes.extend_from_slice(&self.key_id);
        bytes.extend_from_slice(&self.key);
        b64(&bytes)
    }

    /// The `.pub` file, as minisign writes it.
    pub fn to_file_text(&self) -> String {
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            self.key_id_hex(),
            self.to_base64()
        )
    }

    pub fn key_id_hex(&self) -> String {
        key_id_hex(&self.key_id)
    }

    /// blake3 of the 32-byte Ed25519 key: how the manifest names its issuer.
    pub fn pk_blake3(&self) -> String {
        crate::blake3_hex(&self.key)
    }

    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        VerifyingKey::from_bytes(&self.key).map_err(|_| KeyError::PublicKeyPoint)
    }
}

/// A decrypted minisign secret key.
pub struct SecretKey {
    pub key_id: [u8; 8],
    signing: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("key_id", &key_id_hex(&self.key_id))
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    crate::hex::random::<N>().map_err(|e| KeyError::Random(e.to_string()))
}

fn checksum(key_id: &[u8; 8], sk: &[u8; 64]) -> [u8; 32] {
    let mut h = blake2::Blake2b::<blake2::digest::consts::U32>::new();
    h.update(b"Ed");
    h.update(key_id);
    h.update(sk);
    h.finalize().into()
}

/// libsodium's `pickparams` for scrypt-salsa208-sha256: (log2 N, r, p).
fn pick_params(ops: u64, mem: u64) -> (u8, u32, u32) {
    let ops = ops.max(32_768);
    let r: u64 = 8;
    let mut n_log2: u8 = 1;
    if ops < mem / 32 {
        let max_n = ops / (r * 4);
        while n_log2 < 63 && (1u64 << n_log2) <= max_n / 2 {
            n_log2 += 1;
        }
        (n_log2, 8, 1)
    } else {
        let max_n = mem / (r * 128);
        while n_log2 < 63 && (1u64 << n_log2) <= max_n / 2 {
            n_log2 += 1;
        }
        let max_rp = ((ops / 4) / (1u64 << n_log2)).min(0x3fff_ffff);
        let p = u32::try_from(max_rp / r).unwrap_or(1).max(1);
        (n_log2, 8, p)
    }
}

fn scrypt_stream(password: &[u8], salt: &[u8], ops: u64, mem: u64) -> Result<[u8; 104], KeyError> {
    let (n_log2, r, p) = pick_params(ops, mem);
    if mem > MEMLIMIT_MAX || n_log2 > N_LOG2_MAX {
        return Err(KeyError::ScryptTooHigh { ops, mem });
    }
    let params = scrypt::Params::new(n_log2, r, p, scrypt::Params::RECOMMENDED_LEN)
        .map_err(|_| KeyError::ScryptTooHigh { ops, mem })?;
    let mut out = [0u8; 104];
    scrypt::scrypt(password, salt, &params, &mut out)
        .map_err(|_| KeyError::ScryptTooHigh { ops, mem })?;
    Ok(out)
}

impl SecretKey {
    /// A fresh key pair with a random key id.
    pub fn generate() -> Result<SecretKey, KeyError> {
        Ok(SecretKey {
            key_id: random::<8>()?,
            signing: SigningKey::from_bytes(&random::<32>()?),
        })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key_id: self.key_id,
            key: self.signing.verifying_key().to_bytes(),
        }
    }

    /// Ed25519 over `message` (deterministic, RFC 8032).
    pub fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The same key under another key id: for building test fixtures (key ids are
    /// hints, not bound to the key).
    #[doc(hidden)]
    pub fn with_key_id(self, key_id: [u8; 8]) -> SecretKey {
        SecretKey { key_id, ..self }
    }

    /// The secret key file; encrypted with scrypt when a password is given.
    pub fn to_file_text(&self, password: Option<&[u8]>) -> Result<String, KeyError> {
        let mut sk = [0u8; 64];
        sk[..32].copy_from_slice(&self.signing.to_bytes());
        sk[32..].copy_from_slice(&self.signing.verifying_key().to_bytes());
        let mut payload = Vec::with_capacity(104);
        payload.extend_from_slice(&self.key_id);
        payload.extend_from_slice(&sk);
        payload.extend_from_slice(&checksum(&self.key_id, &sk));
        let mut out = Vec::with_capacity(158);
        out.extend_from_slice(b"Ed");
        let comment = match password {
            Some(password) => {
                let salt = random::<32>()?;
                let stream = scrypt_stream(password, &salt, OPSLIMIT, MEMLIMIT)?;
                payload.iter_mut().zip(stream).for_each(|(b, s)| *b ^= s);
                out.extend_from_slice(b"Sc");
                out.extend_from_slice(b"B2");
                out.extend_from_slice(&salt);
                out.extend_from_slice(&OPSLIMIT.to_le_bytes());
                out.extend_from_slice(&MEMLIMIT.to_le_bytes());
                "minisign encrypted secret key"
            }
            None => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(b"B2");
                out.extend_from_slice(&[0u8; 48]);
                "minisign unencrypted secret key"
            }
        };
        out.extend_from_slice(&payload);
        Ok(format!("untrusted comment: {comment}\n{}\n", b64(&out)))
    }

    /// Whether a secret key file is encrypted (so a password is needed).
    pub fn is_encrypted(text: &str) -> Result<bool, KeyError> {
        let raw = decode_secret(text)?;
        Ok(&raw[2..4] == b"Sc")
    }

    /// Reads a secret key file, decrypting it with `password` when it is encrypted.
    pub fn from_file_text(text: &str, password: Option<&[u8]>) -> Result<SecretKey, KeyError> {
        let raw = decode_secret(text)?;
        let (sig, kdf, chk) = (&raw[0..2], &raw[2..4], &raw[4..6]);
        if sig != b"Ed" || chk != b"B2" || (kdf != b"Sc" && kdf != [0, 0]) {
            return Err(KeyError::SecretKeyAlgorithm {
                sig: String::from_utf8_lossy(sig).into(),
                kdf: String::from_utf8_lossy(kdf).into(),
                chk: String::from_utf8_lossy(chk).into(),
            });
        }
        let mut payload = [0u8; 104];
        payload.copy_from_slice(&raw[54..158]);
        let encrypted = kdf == b"Sc";
        if encrypted {
            let password = password.ok_or(KeyError::PasswordNeeded)?;
            let mut le = [0u8; 8];
            le.copy_from_slice(&raw[38..46]);
            let ops = u64::from_le_bytes(le);
            le.copy_from_slice(&raw[46..54]);
            let mem = u64::from_le_bytes(le);
            let stream = scrypt_stream(password, &raw[6..38], ops, mem)?;
            payload.iter_mut().zip(stream).for_each(|(b, s)| *b ^= s);
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&payload[..8]);
        let mut sk = [0u8; 64];
        sk.copy_from_slice(&payload[8..72]);
        if checksum(&key_id, &sk)[..] != payload[72..104] {
            return Err(if encrypted {
                KeyError::WrongPassword
            } else {
                KeyError::Corrupted
            });
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&sk[..32]);
        let signing = SigningKey::from_bytes(&seed);
        if signing.verifying_key().to_bytes()[..] != sk[32..] {
            return Err(KeyError::Corrupted);
        }
        Ok(SecretKey { key_id, signing })
    }
}

fn decode_secret(text: &str) -> Result<Vec<u8>, KeyError> {
    if text.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyError::SecretKeyFormat);
    }
    let mut lines = text.lines();
    let comment = lines.next().ok_or(KeyError::SecretKeyFormat)?;
    if !comment.starts_with("untrusted comment:") {
        return Err(KeyError::SecretKeyFormat);
    }
    let raw = lines
        .next()
        .and_then(b64_strict)
        .ok_or(KeyError::SecretKeyFormat)?;
    if raw.len() != 158 {
        return Err(KeyError::SecretKeyFormat);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn keys_round_trip_encrypted_and_not() {
        let key = SecretKey::generate().unwrap();
        let plain = key.to_file_text(None).unwrap();
        assert_eq!(
            SecretKey::from_file_text(&plain, None).unwrap().public(),
            key.public()
        );
        let enc = key.to_file_text(Some(b"pw")).unwrap();
        assert!(SecretKey::is_encrypted(&enc).unwrap());
        assert_eq!(
            SecretKey::from_file_text(&enc, Some(b"pw"))
                .unwrap()
                .public(),
            key.public()
        );
        assert_eq!(
            SecretKey::from_file_text(&enc, Some(b"nope")).unwrap_err(),
            KeyError::WrongPassword
        );
        assert_eq!(
            SecretKey::from_file_text(&enc, None).unwrap_err(),
            KeyError::PasswordNeeded
        );
        let public = key.public();
        assert_eq!(
            PublicKey::from_file_text(&public.to_file_text()).unwrap(),
            public
        );
    }

    #[test]
    fn scrypt_parameters_match_libsodium() {
        assert_eq!(pick_params(OPSLIMIT, MEMLIMIT), (15, 8, 1));
        // libsodium SENSITIVE limits, as `minisign -G` uses them.
        assert_eq!(pick_params(33_554_432, 1_073_741_824), (20, 8, 1));
    }
}
