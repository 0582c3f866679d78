//! Who may call: tokens verified by nilecare-auth, mutations need the `clinician` role, reads
//! accept an optional token, the clinic claim selects the cache tenant, revocations and the
//! issuer's key sets shared on Redis.
//!
//! Two issuers:
//! - `AUTH_ISSUER` set: tokens of that issuer, keys from `AUTH_JWKS_URL` or its OIDC discovery;
//! - otherwise, in development (`APP_ENV` development/dev/local/test), a **development issuer**:
//!   an Ed25519 key derived from a fixed, publicly known seed (so every local instance shares
//!   it), its JWKS at `/.well-known/jwks.json` and `POST /dev/token` minting tokens. In
//!   production without `AUTH_ISSUER` nothing is minted or accepted: every mutation is 401.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nilecare::auth::jsonwebtoken::{EncodingKey, Header, encode};
use nilecare::auth::{
    Algorithm, Claims, KeySet, RedisRevocationStore, RevocationSettings, Revocations, Verifier,
};
use nilecare::error_handler::ApiError;
use serde_json::{Value, json};

use super::AppState;
use super::config::Settings;

/// The issuer of development tokens.
pub const DEV_ISSUER: &str = "urn:nilecare:development-issuer";
/// The key id of the development key.
const DEV_KID: &str = "nilecare-dev-1";
/// The development key's seed: public on purpose (development only, never in production).
const DEV_SEED: &[u8; 32] = b"nilecare development issuer key!";
/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// The longest development token lifetime.
const MAX_DEV_TTL: u64 = 24 * 3600;

/// Whether `APP_ENV` names a development environment.
pub fn is_development(environment: &str) -> bool {
    matches!(environment, "development" | "dev" | "local" | "test")
}

/// The development issuer: signs tokens with the development key.
#[derive(Clone)]
pub struct DevIssuer {
    encoding: EncodingKey,
    jwk: Value,
    audience: String,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("kid", &DEV_KID)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    fn new(audience: &str) -> Result<Self, ring::error::KeyRejected> {
        let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(DEV_SEED);
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)?;
        let public = ring::signature::KeyPair::public_key(&pair).as_ref();
        Ok(DevIssuer {
            encoding: EncodingKey::from_ed_der(&pkcs8),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                        "kid": DEV_KID, "x": URL_SAFE_NO_PAD.encode(public)}),
            audience: audience.to_owned(),
        })
    }

    /// The JWKS of the development key.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// A token for `subject` with `roles` and `clinic`, valid for `ttl` seconds, with a `jti`.
    pub fn mint(&self, subject: &str, roles: &[String], clinic: Option<&str>, ttl: u64) -> String {
        let now = unix_now();
        let mut claims = json!({"iss": DEV_ISSUER, "aud": self.audience, "sub": subject,
                                "roles": roles, "iat": now, "exp": now + ttl,
                                "jti": format!("dev-{now}-{}", token_nonce())});
        if let Some(clinic) = clinic {
            claims["clinic_id"] = json!(clinic);
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(DEV_KID.to_owned());
        // Signing a JSON object with a valid Ed25519 key cannot fail.
        encode(&header, &claims, &self.encoding).unwrap_or_default()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A per-process counter making each development token id unique.
fn token_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let process = u64::from(std::process::id()) << 32;
    process | NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The verifier (none: no issuer, every mutation refused), the development issuer when active,
/// and the revocations.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Verifies callers' tokens.
    pub verifier: Option<Verifier>,
    /// Mints development tokens (development without `AUTH_ISSUER` only).
    pub dev: Option<DevIssuer>,
    /// Revoked tokens and subjects (on Redis when configured).
    pub revocations: Revocations,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the verifier from the settings; revocations on `redis` when given, and then the
/// issuer's key sets shared with the other instances through `cache` (one JWKS fetch for all).
pub async fn build(
    settings: &Settings,
    redis: Option<&nilecare::redis::fred::clients::Pool>,
    cache: &nilecare::cache::Cache,
) -> Result<Auth, BoxError> {
    let revocations = match redis {
        Some(pool) => {
            Revocations::start(
                RedisRevocationStore::new(pool.clone()),
                RevocationSettings::default(),
            )
            .await?
        }
        None => Revocations::memory(),
    };
    let common = |builder: nilecare::auth::VerifierBuilder| {
        builder
            .audience(&settings.auth_audience)
            .roles_claims([settings.auth_roles_claim.as_str()])
            .tenant_claim(&settings.auth_tenant_claim)
            .require_claim("sub")
            .revocations(revocations.clone())
    };
    if let Some(issuer) = &settings.auth_issuer {
        let builder = common(Verifier::builder().issuer(issuer)).algorithms([
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ]);
        let builder = match &settings.auth_jwks_url {
            Some(url) => builder.jwks_url(url),
            None => builder.oidc_discovery(),
        };
        let builder = match redis {
            Some(_) => builder.shared_key_sets(cache.clone()),
            None => builder,
        };
        let verifier = builder.build()?;
        if let Err(error) = verifier.prefetch_keys().await {
            // Not fatal: keys are fetched again on the first request.
            tracing::warn!(%error, "the issuer's keys could not be fetched at start-up");
        }
        return Ok(Auth {
            verifier: Some(verifier),
            dev: None,
            revocations,
        });
    }
    if !is_development(&settings.environment) {
        tracing::warn!(
            "AUTH_ISSUER is not set: every mutation is refused (401). Set AUTH_ISSUER, or \
             APP_ENV=development for the built-in development issuer"
        );
        return Ok(Auth {
            verifier: None,
            dev: None,
            revocations,
        });
    }
    let dev =
        DevIssuer::new(&settings.auth_audience).map_err(|e| format!("the development key: {e}"))?;
    let keys = KeySet::from_jwks(dev.jwks().to_string().as_bytes())?;
    let verifier = common(Verifier::builder().issuer(DEV_ISSUER))
        .algorithms([Algorithm::EdDSA])
        .key_set(keys)
        .build()?;
    tracing::info!(
        "development issuer on: POST /dev/token mints tokens, GET /.well-known/jwks.json"
    );
    Ok(Auth {
        verifier: Some(verifier),
        dev: Some(dev),
        revocations,
    })
}

/// `GET /.well-known/jwks.json` (development issuer).
pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    match &state.auth.dev {
        Some(dev) => Json(dev.jwks()).into_response(),
        None => ApiError::not_found("/.well-known/jwks.json").into_response(),
    }
}

/// What `POST /dev/token` accepts.
#[derive(Debug, serde::Deserialize)]
pub struct TokenRequest {
    /// The subject (default `dev-user`).
    #[serde(default)]
    pub sub: Option<String>,
    /// Roles (default `["clinician"]`).
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// The clinic (tenant).
    #[serde(default)]
    pub clinic_id: Option<String>,
    /// Lifetime in seconds (default 3600, at most a day).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// `POST /dev/token`: a development token (development issuer only).
pub async fn mint(
    State(state): State<Arc<AppState>>,
    nilecare::error_handler::Json(request): nilecare::error_handler::Json<TokenRequest>,
) -> Result<Json<Value>, ApiError> {
    let dev = state
        .auth
        .dev
        .as_ref()
        .ok_or_else(|| ApiError::not_found("/dev/token"))?;
    let ttl = request.ttl_secs.unwrap_or(3600);
    if ttl == 0 || ttl > MAX_DEV_TTL {
        return Err(ApiError::validation().field("ttl_secs", format!("must be 1..={MAX_DEV_TTL}")));
    }
    let roles = request.roles.unwrap_or_else(|| vec!["clinician".into()]);
    let sub = request.sub.unwrap_or_else(|| "dev-user".into());
    let token = dev.mint(&sub, &roles, request.clinic_id.as_deref(), ttl);
    Ok(Json(
        json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl}),
    ))
}

/// `POST /api/v1/auth/logout`: revokes the caller's token on every instance.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    claims: Claims,
) -> Result<axum::http::StatusCode, ApiError> {
    let (Some(jti), Some(exp)) = (claims.token_id.as_deref(), claims.expires_at) else {
        return Err(ApiError::bad_request(
            "the token has no jti and exp to revoke",
        ));
    };
    state
        .auth
        .revocations
        .revoke_token(jti, exp)
        .await
        .map_err(|e| ApiError::upstream_unavailable("the revocation store").with_source(e))?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// After verification: the clinic claim of an authenticated caller becomes its `X-Clinic-Id`
/// (the cache tenant and the header forwarded downstream) and its metrics tenant, whatever the
/// client sent.
pub fn tenant_from_claims<B>(mut request: http::Request<B>) -> http::Request<B> {
    let Some(tenant) = request
        .extensions()
        .get::<Claims>()
        .and_then(|c| c.tenant.clone())
    else {
        return request;
    };
    if let Some(metrics_tenant) = request
        .extensions()
        .get::<nilecare::metrics::RequestTenant>()
    {
        metrics_tenant.refine(&tenant);
    }
    if let Ok(value) = http::HeaderValue::from_str(&tenant) {
        request.headers_mut().insert("x-clinic-id", value);
    }
    request
}
