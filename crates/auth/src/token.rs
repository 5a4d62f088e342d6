//! Signed access tokens: short-lived JWTs signed with Ed25519 (`EdDSA`).
//!
//! The server that logs people in holds a [`TokenKeys`] (private and public key); any other
//! service only needs the public key in PEM to build a [`TokenVerifier`]. The private key is
//! handed to the caller as PKCS#8 PEM when generated and read back from it at start; this
//! module never writes it anywhere.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use ed25519_dalek::{SigningKey, VerifyingKey, SECRET_KEY_LENGTH};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::secret::new_token_id;
use crate::{AuthError, Result};

/// The audience (`aud`) every token issued here carries and every verifier demands.
pub const AUDIENCE: &str = "ruche";

/// Clock skew tolerated on `exp`, in seconds. Small, because the issuing and verifying
/// services normally share a host or at least a time source.
const LEEWAY_SECS: u64 = 5;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// The subject: whom the token speaks for, as the caller chose to name them.
    pub sub: String,
    /// The audience, always [`AUDIENCE`] for a valid token.
    pub aud: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, in seconds since the Unix epoch.
    pub iat: u64,
    /// A random token id, so that a caller can keep a deny list of revoked tokens.
    pub jti: String,
}

/// The signing key pair of the token issuer: it signs new tokens and can verify them.
pub struct TokenKeys {
    encoding: EncodingKey,
    verifier: TokenVerifier,
    public_pem: String,
}

/// The verifying half alone: checks tokens, cannot issue them. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    /// Generates a fresh Ed25519 key pair and returns it with its PKCS#8 PEM private key
    /// (to be stored by the caller).
    pub fn generate() -> Result<(TokenKeys, String)> {
        // `rand` 0.9 and `ed25519-dalek` 2 use different `rand_core` versions, so the key is
        // built from 32 bytes of the cryptographic thread generator instead of
        // `SigningKey::generate`.
        let mut seed = Zeroizing::new([0u8; SECRET_KEY_LENGTH]);
        rand::rng().fill(&mut seed[..]);
        let signing = SigningKey::from_bytes(&seed);

        let pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|err| invalid_key("private key pem", err))?;
        let keys = Self::from_signing_key(&signing)?;

        Ok((keys, pem.as_str().to_owned()))
    }

    /// Reads a key pair back from the PKCS#8 PEM private key that [`TokenKeys::generate`]
    /// returned.
    pub fn from_private_pem(pem: &str) -> Result<TokenKeys> {
        let signing =
            SigningKey::from_pkcs8_pem(pem).map_err(|err| invalid_key("private key pem", err))?;

        Self::from_signing_key(&signing)
    }

    /// The public key in PEM (SPKI), so that other services verify with it alone.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Returns a verifier for the tokens these keys sign.
    pub fn verifier(&self) -> TokenVerifier {
        self.verifier.clone()
    }

    /// Signs a new token for `subject` valid for `ttl` (whole seconds) from now, with a fresh
    /// random `jti`, and returns it with its claims.
    pub fn issue(&self, subject: &str, ttl: Duration) -> Result<(String, Claims)> {
        let iat = now_secs();
        let claims = Claims {
            sub: subject.to_owned(),
            aud: AUDIENCE.to_owned(),
            exp: iat.saturating_add(ttl.as_secs()),
            iat,
            jti: new_token_id(),
        };

        let token = self.sign(&claims)?;
        Ok((token, claims))
    }

    fn from_signing_key(signing: &SigningKey) -> Result<TokenKeys> {
        // jsonwebtoken's RustCrypto signer wants the private key as PKCS#8 DER.
        let der = signing
            .to_pkcs8_der()
            .map_err(|err| invalid_key("private key der", err))?;
        let verifying = signing.verifying_key();
        let public_pem = verifying
            .to_public_key_pem(LineEnding::LF)
            .map_err(|err| invalid_key("public key pem", err))?;

        Ok(TokenKeys {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            verifier: TokenVerifier::from_verifying_key(&verifying),
            public_pem,
        })
    }

    fn sign(&self, claims: &Claims) -> Result<String> {
        let header = Header::new(Algorithm::EdDSA);
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(AuthError::Signing)
    }
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key is deliberately left out.
        f.debug_struct("TokenKeys")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Builds a verifier from an Ed25519 public key in PEM (SPKI), as given by
    /// [`TokenKeys::public_pem`].
    pub fn from_public_pem(pem: &str) -> Result<TokenVerifier> {
        let verifying = VerifyingKey::from_public_key_pem(pem)
            .map_err(|err| invalid_key("public key pem", err))?;

        Ok(Self::from_verifying_key(&verifying))
    }

    /// Checks a token and returns its claims.
    ///
    /// Refuses alg none, any algorithm other than EdDSA, a wrong audience, an expired token
    /// (5 s leeway), a bad signature, and a token missing `exp`, `aud` or `sub`.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(refusal)
    }

    fn from_verifying_key(verifying: &VerifyingKey) -> TokenVerifier {
        // jsonwebtoken's RustCrypto verifier wants the raw 32-byte public key.
        TokenVerifier {
            decoding: DecodingKey::from_ed_der(verifying.as_bytes()),
            validation: strict_validation(),
        }
    }
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

/// EdDSA only, our audience only, little leeway, and the claims we rely on must be present.
fn strict_validation() -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.validate_aud = true;
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    validation
}

/// Turns a jsonwebtoken error into a refusal with a reason fit for a log line.
fn refusal(err: jsonwebtoken::errors::Error) -> AuthError {
    let reason = match err.kind() {
        ErrorKind::ExpiredSignature => return AuthError::TokenExpired,
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => "algorithm not allowed",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::MissingRequiredClaim(_) => "missing claim",
        ErrorKind::ImmatureSignature => "not yet valid",
        ErrorKind::InvalidToken
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "malformed token",
        _ => "invalid token",
    };

    AuthError::TokenRefused { reason }
}

fn invalid_key(what: &'static str, err: impl fmt::Display) -> AuthError {
    AuthError::InvalidKey {
        what,
        reason: err.to_string(),
    }
}

/// Seconds since the Unix epoch; a clock set before 1970 counts as the epoch itself.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    const HOUR: Duration = Duration::from_secs(3600);

    fn keys() -> TokenKeys {
        TokenKeys::generate().expect("key generation works").0
    }

    fn claims_expiring_at(exp: u64) -> Claims {
        Claims {
            sub: "alice".into(),
            aud: AUDIENCE.into(),
            exp,
            iat: exp.saturating_sub(3600),
            jti: new_token_id(),
        }
    }

    fn assert_refused(result: Result<Claims>, expected_reason: &str) {
        match result {
            Err(AuthError::TokenRefused { reason }) => assert_eq!(reason, expected_reason),
            other => panic!("expected refusal ({expected_reason}), got {other:?}"),
        }
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn issued_token_verifies_and_round_trips_its_claims() {
        let keys = keys();

        let (token, issued) = keys.issue("alice", HOUR).expect("issue works");
        let verified = keys.verifier().verify(&token).expect("token verifies");

        assert_eq!(verified, issued);
        assert_eq!(issued.sub, "alice");
        assert_eq!(issued.aud, AUDIENCE);
        assert_eq!(issued.exp, issued.iat + 3600);
        assert!(!issued.jti.is_empty());
    }

    #[test]
    fn each_token_gets_its_own_jti() {
        let keys = keys();
        let (_, first) = keys.issue("alice", HOUR).expect("issue works");
        let (_, second) = keys.issue("alice", HOUR).expect("issue works");
        assert_ne!(first.jti, second.jti);
    }

    #[test]
    fn token_signed_by_another_key_is_refused() {
        let (token, _) = keys().issue("alice", HOUR).expect("issue works");
        assert_refused(keys().verifier().verify(&token), "bad signature");
    }

    #[test]
    fn alg_none_token_is_refused() {
        let keys = keys();
        let header = b64(r#"{"alg":"none","typ":"JWT"}"#);
        let claims = serde_json::to_string(&claims_expiring_at(now_secs() + 3600))
            .expect("claims serialize");
        let token = format!("{header}.{}.", b64(&claims));

        assert!(matches!(
            keys.verifier().verify(&token),
            Err(AuthError::TokenRefused { .. })
        ));
    }

    #[test]
    fn hs256_token_keyed_with_the_public_key_is_refused() {
        let keys = keys();
        let claims = claims_expiring_at(now_secs() + 3600);
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(keys.public_pem().as_bytes()),
        )
        .expect("hs256 signing works");

        assert_refused(keys.verifier().verify(&forged), "algorithm not allowed");
    }

    #[test]
    fn wrong_audience_is_refused() {
        let keys = keys();
        let mut claims = claims_expiring_at(now_secs() + 3600);
        claims.aud = "another-service".into();
        let token = keys.sign(&claims).expect("signing works");

        assert_refused(keys.verifier().verify(&token), "wrong audience");
    }

    #[test]
    fn expired_token_is_refused() {
        let keys = keys();
        let token = keys
            .sign(&claims_expiring_at(now_secs() - LEEWAY_SECS - 60))
            .expect("signing works");

        assert!(matches!(
            keys.verifier().verify(&token),
            Err(AuthError::TokenExpired)
        ));
    }

    #[test]
    fn token_expired_within_the_leeway_is_accepted() {
        let keys = keys();
        let token = keys
            .sign(&claims_expiring_at(now_secs() - 1))
            .expect("signing works");

        assert!(keys.verifier().verify(&token).is_ok());
    }

    #[test]
    fn tampered_payload_is_refused() {
        let keys = keys();
        let (token, mut claims) = keys.issue("alice", HOUR).expect("issue works");
        claims.sub = "admin".into();
        let forged_payload = b64(&serde_json::to_string(&claims).expect("claims serialize"));

        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);

        assert_refused(keys.verifier().verify(&forged), "bad signature");
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        let verifier = keys().verifier();
        for token in ["", ".", "..", "a.b.c", "a.b", "x.y.z.w", "é.é.é"] {
            assert!(verifier.verify(token).is_err(), "accepted {token:?}");
        }
    }

    #[test]
    fn verifier_built_from_public_pem_alone_accepts() {
        let keys = keys();
        let (token, issued) = keys.issue("bob", HOUR).expect("issue works");

        let verifier = TokenVerifier::from_public_pem(keys.public_pem()).expect("pem parses");

        assert!(keys.public_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(verifier.verify(&token).expect("token verifies"), issued);
    }

    #[test]
    fn private_pem_reloads_the_same_key_pair() {
        let (keys, pem) = TokenKeys::generate().expect("key generation works");
        let reloaded = TokenKeys::from_private_pem(&pem).expect("pem parses");
        let (token, _) = reloaded.issue("carol", HOUR).expect("issue works");

        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(reloaded.public_pem(), keys.public_pem());
        assert!(keys.verifier().verify(&token).is_ok());
    }

    #[test]
    fn bad_pem_is_an_invalid_key() {
        let private = TokenKeys::from_private_pem("not a key");
        let public = TokenVerifier::from_public_pem("not a key");

        assert!(matches!(private, Err(AuthError::InvalidKey { .. })));
        assert!(matches!(public, Err(AuthError::InvalidKey { .. })));
    }

    #[test]
    fn debug_output_leaves_the_private_key_out() {
        let (keys, pem) = TokenKeys::generate().expect("key generation works");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();

        assert!(!format!("{keys:?}").contains(&body));
    }
}
