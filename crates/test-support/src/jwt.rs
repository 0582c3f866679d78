//! A local identity provider for auth tests: signing keys of every family (RSA from fixed test
//! keys, EC and Ed25519 generated per test, HMAC from a secret), tokens signed with them, and a
//! [`JwksServer`] serving the public keys as a JWKS and an OIDC discovery document over HTTP or
//! HTTPS, counting fetches, and able to rotate keys or go down.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// Base64url without padding, as JOSE writes binary values.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

const RSA_1_PEM: &str = include_str!("jwt_keys/rsa-1.pem");
const RSA_1_N: &str = include_str!("jwt_keys/rsa-1.n");
const RSA_2_PEM: &str = include_str!("jwt_keys/rsa-2.pem");
const RSA_2_N: &str = include_str!("jwt_keys/rsa-2.n");

/// A private key with its `kid`, algorithm and public JWK.
#[derive(Clone)]
pub struct SigningKey {
    /// The key id written in tokens' headers and in the JWK.
    pub kid: String,
    /// The algorithm tokens are signed with.
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public key as a JWK (with `kid`, `alg` and `use: sig`).
    pub jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// One of two fixed 2048-bit RSA test keys (`which` = 1 or 2; ring cannot generate RSA keys),
    /// for `alg` = RS256/384/512 or PS256/384/512.
    ///
    /// # Panics
    /// For another `which`.
    pub fn rsa(which: u8, kid: &str, alg: Algorithm) -> Self {
        let (pem, n) = match which {
            1 => (RSA_1_PEM, RSA_1_N),
            2 => (RSA_2_PEM, RSA_2_N),
            _ => panic!("there are two RSA test keys: 1 and 2"),
        };
        SigningKey {
            kid: kid.to_owned(),
            alg,
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA test key"),
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": alg_name(alg),
                        "n": n.trim(), "e": "AQAB"}),
        }
    }

    /// The private PEM (PKCS#8) of RSA test key `which` (1 or 2), for benches that build their
    /// own `jsonwebtoken` keys.
    pub fn rsa_private_pem(which: u8) -> &'static str {
        if which == 1 { RSA_1_PEM } else { RSA_2_PEM }
    }

    /// A new EC key: ES256 (P-256) or ES384 (P-384).
    ///
    /// # Panics
    /// For another algorithm.
    pub fn ec(kid: &str, alg: Algorithm) -> Self {
        let (curve, signature) = match alg {
            Algorithm::ES256 => ("P-256", &rcgen::PKCS_ECDSA_P256_SHA256),
            Algorithm::ES384 => ("P-384", &rcgen::PKCS_ECDSA_P384_SHA384),
            _ => panic!("EC keys are ES256 or ES384"),
        };
        let pair = rcgen::KeyPair::generate_for(signature).expect("EC key");
        let point = pair.public_key_raw();
        let half = (point.len() - 1) / 2;
        SigningKey {
            kid: kid.to_owned(),
            alg,
            encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("EC PEM"),
            jwk: json!({"kty": "EC", "kid": kid, "use": "sig", "alg": alg_name(alg), "crv": curve,
                        "x": b64url(&point[1..1 + half]), "y": b64url(&point[1 + half..])}),
        }
    }

    /// A new Ed25519 key (EdDSA).
    pub fn ed25519(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key");
        SigningKey {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).expect("Ed PEM"),
            jwk: json!({"kty": "OKP", "kid": kid, "use": "sig", "alg": "EdDSA", "crv": "Ed25519",
                        "x": b64url(pair.public_key_raw())}),
        }
    }

    /// An HMAC key (HS256/384/512) from a shared secret; its "JWK" is an `oct` key (never
    /// served by a real provider, used by attack tests).
    pub fn hmac(kid: &str, alg: Algorithm, secret: &[u8]) -> Self {
        SigningKey {
            kid: kid.to_owned(),
            alg,
            encoding: EncodingKey::from_secret(secret),
            jwk: json!({"kty": "oct", "kid": kid, "alg": alg_name(alg), "k": b64url(secret)}),
        }
    }

    /// A token with these claims, header `{"alg": .., "typ": "JWT", "kid": ..}`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(&header, claims)
    }

    /// A token with this header (its `alg` decides the signature) and claims.
    ///
    /// # Panics
    /// When the header's algorithm does not fit the key.
    pub fn sign_with_header(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).expect("sign test token")
    }
}

/// The JOSE name of an algorithm (`RS256`, ...).
pub fn alg_name(alg: Algorithm) -> String {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A JWKS document of these keys' public halves.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

#[derive(Debug)]
struct ProviderState {
    jwks: Value,
    down: bool,
    cache_control: Option<String>,
}

/// A local identity provider: `GET /jwks.json` (the key set, optional `Cache-Control`) and
/// `GET /.well-known/openid-configuration` (issuer = the server's base URL). Counts JWKS
/// fetches; [`set_down`](Self::set_down) makes both answer 503.
#[derive(Clone, Debug)]
pub struct JwksServer {
    base: String,
    state: Arc<Mutex<ProviderState>>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    /// Serves `jwks` over plain HTTP on a free port.
    pub async fn start(jwks: Value) -> Self {
        let (server, app) = Self::prepare(jwks, "http");
        let addr = crate::http::serve(app).await;
        server.with_base(format!("http://{addr}"))
    }

    /// Serves `jwks` over HTTPS with `cert` (from a [`TestCa`](crate::TestCa)).
    pub async fn start_tls(jwks: Value, cert: &crate::IssuedCert) -> Self {
        let (server, app) = Self::prepare(jwks, "https");
        let addr: SocketAddr = crate::http::serve_tls(app, cert).await;
        server.with_base(format!("https://localhost:{}", addr.port()))
    }

    fn with_base(mut self, base: String) -> Self {
        self.base = base;
        self
    }

    /// The app; the discovery document names the issuer as `scheme://` + the `Host` the client
    /// asked for (the base URL it was given).
    fn prepare(jwks: Value, scheme: &'static str) -> (Self, axum::Router) {
        use axum::routing::get;
        let server = JwksServer {
            base: String::new(),
            state: Arc::new(Mutex::new(ProviderState {
                jwks,
                down: false,
                cache_control: None,
            })),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            discovery_fetches: Arc::new(AtomicUsize::new(0)),
        };
        let (jwks_state, jwks_count) = (server.state.clone(), server.jwks_fetches.clone());
        let (doc_state, doc_count) = (server.state.clone(), server.discovery_fetches.clone());
        let app = axum::Router::new()
            .route(
                "/jwks.json",
                get(move || {
                    let (state, count) = (jwks_state.clone(), jwks_count.clone());
                    async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        let state = state.lock().unwrap_or_else(|e| e.into_inner());
                        respond(&state, state.jwks.to_string())
                    }
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                get(move |headers: axum::http::HeaderMap| {
                    let (state, count) = (doc_state.clone(), doc_count.clone());
                    async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        let host = headers
                            .get("host")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let state = state.lock().unwrap_or_else(|e| e.into_inner());
                        let base = format!("{scheme}://{host}");
                        let doc = json!({"issuer": base, "jwks_uri": format!("{base}/jwks.json"),
                                         "id_token_signing_alg_values_supported": ["RS256", "ES256"]});
                        respond(&state, doc.to_string())
                    }
                }),
            );
        (server, app)
    }

    /// The server's base URL (`http://127.0.0.1:port` or `https://localhost:port`): the issuer
    /// of its discovery document.
    pub fn issuer(&self) -> &str {
        &self.base
    }

    /// The JWKS address.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.base)
    }

    /// Replaces the served key set (rotation).
    pub fn set_jwks(&self, jwks: Value) {
        self.lock().jwks = jwks;
    }

    /// `true`: every request answers 503 (the provider is down).
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// The `Cache-Control` header of JWKS responses (`None`: no header).
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.lock().cache_control = value.map(str::to_owned);
    }

    /// JWKS requests served so far (503s included).
    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Discovery requests served so far.
    pub fn discovery_fetches(&self) -> usize {
        self.discovery_fetches.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProviderState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn respond(state: &ProviderState, body: String) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    if state.down {
        return (StatusCode::SERVICE_UNAVAILABLE, "provider down").into_response();
    }
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Some(value) = state
        .cache_control
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}
