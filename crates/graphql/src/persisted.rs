//! [`PersistedQueries`]: clients send a document's SHA-256 instead of the document (automatic
//! persisted queries, the protocol Apollo clients speak), or the service runs only documents it
//! knows (an allow-list, "trusted documents").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::{Request, ServerError, ServerResult, Value};
use nilecare_cache::Cache;
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::metrics::{PERSISTED_QUERIES_TOTAL, count};

/// The lowercase hex SHA-256 of a document: its persisted-query id.
///
/// ```
/// assert_eq!(
///     nilecare_graphql::query_hash("{ __typename }"),
///     "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b", // printf %s "{ __typename }" | sha256sum
/// );
/// ```
pub fn query_hash(query: &str) -> String {
    let digest = sha2::Sha256::digest(query.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[derive(Clone)]
enum Store {
    /// Clients register documents (hash + document) and then send the hash only.
    Automatic { cache: Cache, ttl: Duration },
    /// Only these documents run, by hash.
    AllowList(Arc<HashMap<String, String>>),
}

/// An async-graphql extension for persisted queries.
///
/// A request names its document with `extensions.persistedQuery = {"version": 1,
/// "sha256Hash": "<hex>"}`:
/// - **without** `query`: the stored document runs; unknown hash → error `PersistedQueryNotFound`
///   (`extensions.code` `PERSISTED_QUERY_NOT_FOUND`), and an automatic client retries with the
///   document;
/// - **with** `query`: the hash must be the document's SHA-256 (else `BAD_REQUEST`); in automatic
///   mode the document is stored (in nilecare-cache: in process, or on Redis so every instance
///   knows it) for [`ttl`](Self::ttl).
///
/// [`allow_list`](Self::allow_list) runs only the documents given at startup, whether the
/// request sends the hash or the full text (`PERSISTED_QUERY_NOT_ALLOWED` otherwise): arbitrary
/// queries are refused before parsing.
///
/// Over `GET` (with [`crate::http`]), a stored document that is a mutation is refused (405):
/// a hash must not turn a link into a write.
///
/// A cache failure fails closed for lookups (`PersistedQueryNotFound`: the client sends the
/// document again) and open for registration (the document still runs).
#[derive(Clone)]
pub struct PersistedQueries {
    store: Store,
}

impl std::fmt::Debug for PersistedQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.store {
            Store::Automatic { ttl, .. } => f
                .debug_struct("PersistedQueries::Automatic")
                .field("ttl", ttl)
                .finish(),
            Store::AllowList(list) => f
                .debug_struct("PersistedQueries::AllowList")
                .field("documents", &list.len())
                .finish(),
        }
    }
}

impl PersistedQueries {
    /// Automatic persisted queries stored in `cache` (keys `graphql-pq:<hash>`) for 24 hours.
    pub fn automatic(cache: Cache) -> Self {
        PersistedQueries {
            store: Store::Automatic {
                cache,
                ttl: Duration::from_secs(24 * 3600),
            },
        }
    }

    /// How long a registered document is kept after its registration (automatic mode).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        if let Store::Automatic { ttl: t, .. } = &mut self.store {
            *t = ttl;
        }
        self
    }

    /// Only `documents` run.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `query` (with the parse error) when a document does not parse.
    pub fn allow_list<I, S>(documents: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut list = HashMap::new();
        for document in documents {
            let document = document.into();
            async_graphql::parser::parse_query(&document).map_err(|e| Error::Invalid {
                field: "query",
                message: format!("an allow-listed document does not parse: {e}"),
            })?;
            list.insert(query_hash(&document), document);
        }
        Ok(PersistedQueries {
            store: Store::AllowList(Arc::new(list)),
        })
    }
}

impl ExtensionFactory for PersistedQueries {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

/// A request error with `code`.
fn refuse(message: &str, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// The hash of `extensions.persistedQuery`, checked (version 1, 64 hex digits).
fn requested_hash(request: &Request) -> ServerResult<Option<String>> {
    let Some(persisted) = request.extensions.get("persistedQuery") else {
        return Ok(None);
    };
    let Value::Object(fields) = persisted else {
        return Err(refuse(
            "extensions.persistedQuery must be an object",
            "BAD_REQUEST",
        ));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => {
            return Err(refuse(
                "extensions.persistedQuery.version must be 1",
                "BAD_REQUEST",
            ));
        }
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(Some(hash.to_ascii_lowercase()))
        }
        _ => Err(refuse(
            "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits",
            "BAD_REQUEST",
        )),
    }
}

fn cache_key(hash: &str) -> String {
    format!("graphql-pq:{hash}")
}

#[async_trait::async_trait]
impl Extension for PersistedQueries {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let hash = requested_hash(&request)?;
        #[cfg_attr(not(feature = "axum"), allow(unused_variables))]
        let sent_document = !request.query.is_empty();
        match (&self.store, hash) {
            (Store::AllowList(list), hash) => {
                let hash = hash.unwrap_or_else(|| query_hash(&request.query));
                let Some(document) = list.get(&hash) else {
                    count(PERSISTED_QUERIES_TOTAL, "refused");
                    return Err(refuse(
                        "This document is not on the service's allow-list.",
                        "PERSISTED_QUERY_NOT_ALLOWED",
                    ));
                };
                if !request.query.is_empty() && request.query != *document {
                    count(PERSISTED_QUERIES_TOTAL, "mismatch");
                    return Err(refuse("provided sha does not match query", "BAD_REQUEST"));
                }
                count(PERSISTED_QUERIES_TOTAL, "hit");
                request.query = document.clone();
            }
            (Store::Automatic { .. }, None) => {}
            (Store::Automatic { cache, ttl }, Some(hash)) => {
                if request.query.is_empty() {
                    match cache.get::<String>(&cache_key(&hash)).await {
                        Some(document) => {
                            count(PERSISTED_QUERIES_TOTAL, "hit");
                            request.query = document;
                        }
                        None => {
                            count(PERSISTED_QUERIES_TOTAL, "miss");
                            return Err(refuse(
                                "PersistedQueryNotFound",
                                "PERSISTED_QUERY_NOT_FOUND",
                            ));
                        }
                    }
                } else if query_hash(&request.query) != hash {
                    count(PERSISTED_QUERIES_TOTAL, "mismatch");
                    return Err(refuse("provided sha does not match query", "BAD_REQUEST"));
                } else {
                    count(PERSISTED_QUERIES_TOTAL, "registered");
                    if let Err(error) = cache
                        .set(&cache_key(&hash), &request.query, Some(*ttl))
                        .await
                    {
                        tracing::warn!(%error, "a persisted query was not stored; it runs anyway");
                    }
                }
            }
        }
        // A document sent by the client was checked by the HTTP layer; a stored one is checked
        // here, now that it is known.
        #[cfg(feature = "axum")]
        if !sent_document
            && request
                .data
                .contains_key(&std::any::TypeId::of::<crate::http::ReadOnly>())
            && crate::http::selects_a_mutation(&mut request)
        {
            return Err(refuse("Mutations need POST.", "METHOD_NOT_ALLOWED"));
        }
        next.run(ctx, request).await
    }
}
