//! GraphQL over HTTP for axum, following the GraphQL-over-HTTP specification: `POST` with
//! `application/json` bodies, `GET` with the query string for queries only, the response media
//! type negotiated from `Accept` (`application/graphql-response+json` or `application/json`),
//! and the status codes each media type calls for.
//!
//! | request | answer |
//! |---|---|
//! | a well-formed GraphQL request | 200 with the result (field errors included) |
//! | refused before execution (parse, validation, variables, limits) | `application/json`: 200 with `errors` and no `data`; `application/graphql-response+json`: 400 |
//! | over the complexity budget ([`CostLimit`](crate::CostLimit)) | 429 with `Retry-After`, either media type |
//! | not JSON, not an object, `query` missing or not a string, bad `variables` | 400 problem+json naming the field |
//! | `POST` without `Content-Type: application/json` | 415 problem+json naming `content-type` |
//! | a mutation over `GET` | 405 with `Allow: POST` |
//! | an `Accept` that allows neither JSON type | 406 |
//! | a body over the limit ([`MAX_BODY_BYTES`] with [`graphql_route`]) | 413 |

use async_graphql::{ObjectType, Schema, SubscriptionType};
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use nilecare_error_handler::{ApiError, ErrorCode};

use crate::observe::is_request_error;
use crate::problem::error_code;

/// The GraphQL response media type.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
/// The largest request body [`graphql_route`] accepts (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// 406: no media type the client accepts can carry the answer.
pub const NOT_ACCEPTABLE: ErrorCode = ErrorCode::custom("NOT_ACCEPTABLE", 406, "Not Acceptable");

/// The media type of the answer, negotiated from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `application/graphql-response+json`: request errors are 4xx.
    GraphQLResponseJson,
    /// `application/json`: every GraphQL response is 200.
    Json,
}

impl ResponseFormat {
    /// The format for `headers`' `Accept`: `application/graphql-response+json` when the client
    /// prefers it (or accepts both equally), `application/json` for `application/json`,
    /// `application/*`, `*/*` or no `Accept` at all.
    ///
    /// # Errors
    /// 406 problem+json naming `accept` when neither is acceptable.
    pub fn negotiate(headers: &HeaderMap) -> Result<Self, ApiError> {
        let mut values = headers.get_all(header::ACCEPT).iter().peekable();
        if values.peek().is_none() {
            return Ok(ResponseFormat::Json);
        }
        let mut best: Option<(f32, ResponseFormat)> = None;
        for range in values
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let format = match media.as_str() {
                GRAPHQL_RESPONSE_JSON => ResponseFormat::GraphQLResponseJson,
                "application/json" | "application/*" | "*/*" => ResponseFormat::Json,
                _ => continue,
            };
            if q <= 0.0 {
                continue;
            }
            let better = match best {
                None => true,
                Some((bq, _)) => {
                    q > bq || (q == bq && format == ResponseFormat::GraphQLResponseJson)
                }
            };
            if better {
                best = Some((q, format));
            }
        }
        best.map(|(_, f)| f).ok_or_else(|| {
            ApiError::new(NOT_ACCEPTABLE, "The answer is JSON.").field(
                "accept",
                format!("accept {GRAPHQL_RESPONSE_JSON} or application/json"),
            )
        })
    }

    /// The `Content-Type` of answers in this format (UTF-8).
    pub fn content_type(self) -> &'static str {
        match self {
            ResponseFormat::GraphQLResponseJson => {
                "application/graphql-response+json; charset=utf-8"
            }
            ResponseFormat::Json => "application/json; charset=utf-8",
        }
    }
}

/// Put in a `GET` request's data: the request may only read. [`PersistedQueries`] uses it to
/// refuse a stored mutation requested by hash over `GET`.
///
/// [`PersistedQueries`]: https://docs.rs/nilecare-graphql/latest/nilecare_graphql/struct.PersistedQueries.html
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOnly;

/// A parsed GraphQL-over-HTTP request.
#[derive(Debug)]
pub struct GraphQLRequest {
    /// The GraphQL request, ready for `Schema::execute` (a `GET` one carries [`ReadOnly`]).
    pub request: async_graphql::Request,
    /// The answer's media type.
    pub format: ResponseFormat,
}

fn bad(field: &str, message: &str) -> ApiError {
    ApiError::bad_request("not a GraphQL request").field(field, message.to_owned())
}

/// The parameters of a request, from a JSON body or a query string.
struct Params {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<serde_json::Map<String, serde_json::Value>>,
    extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Params {
    fn from_json(body: &[u8]) -> Result<Params, ApiError> {
        if body.is_empty() {
            return Err(bad("body", "is empty"));
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| bad("body", &format!("is not JSON: {e}")))?;
        let serde_json::Value::Object(mut fields) = value else {
            return Err(bad("body", "must be a JSON object"));
        };
        let string = |v: Option<serde_json::Value>, field: &str| match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(field, "must be a string")),
        };
        let object = |v: Option<serde_json::Value>, field: &str| match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(bad(field, "must be an object")),
        };
        Ok(Params {
            query: string(fields.remove("query"), "query")?,
            operation_name: string(fields.remove("operationName"), "operationName")?,
            variables: object(fields.remove("variables"), "variables")?,
            extensions: object(fields.remove("extensions"), "extensions")?,
        })
    }

    fn from_query_string(query: &str) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| bad("query", &format!("is not a form-encoded query string: {e}")))?;
        let mut params = Params {
            query: None,
            operation_name: None,
            variables: None,
            extensions: None,
        };
        let json_object = |text: &str, field: &str| match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
            Ok(serde_json::Value::Null) => Ok(None),
            _ => Err(bad(field, "must be a JSON object")),
        };
        for (name, value) in pairs {
            match name.as_str() {
                "query" => params.query = Some(value),
                "operationName" if !value.is_empty() => params.operation_name = Some(value),
                "variables" if !value.is_empty() => {
                    params.variables = json_object(&value, "variables")?
                }
                "extensions" if !value.is_empty() => {
                    params.extensions = json_object(&value, "extensions")?;
                }
                _ => {}
            }
        }
        Ok(params)
    }

    fn into_request(self) -> Result<async_graphql::Request, ApiError> {
        let persisted = self
            .extensions
            .as_ref()
            .is_some_and(|e| e.contains_key("persistedQuery"));
        let query = match self.query {
            Some(query) => query,
            // A persisted query's document is looked up by its hash.
            None if persisted => String::new(),
            None => return Err(bad("query", "is required")),
        };
        let mut request = async_graphql::Request::new(query);
        request.operation_name = self.operation_name;
        if let Some(variables) = self.variables {
            request.variables =
                async_graphql::Variables::from_json(serde_json::Value::Object(variables));
        }
        if let Some(extensions) = self.extensions {
            for (name, value) in extensions {
                let value = async_graphql::Value::from_json(value)
                    .map_err(|_| bad("extensions", "must hold JSON values"))?;
                request.extensions.insert(name, value);
            }
        }
        Ok(request)
    }
}

/// Whether the operation the request selects is a mutation (an unparsable document is left to
/// the executor, which answers it with a GraphQL error). The parsed document stays in the
/// request, and the executor uses it instead of parsing again.
pub(crate) fn selects_a_mutation(request: &mut async_graphql::Request) -> bool {
    if request.query.is_empty() {
        return false;
    }
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    crate::Operation::select(document, name.as_deref())
        .is_some_and(|op| op.kind == crate::OperationKind::Mutation)
}

fn is_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let unsupported = |why: &str| {
        ApiError::new(
            ErrorCode::UNSUPPORTED_MEDIA_TYPE,
            "GraphQL requests are JSON.",
        )
        .field("content-type", why.to_owned())
    };
    let value = headers
        .get(header::CONTENT_TYPE)
        .ok_or_else(|| unsupported("is required: application/json"))?
        .to_str()
        .map_err(|_| unsupported("must be application/json"))?;
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(unsupported("must be application/json"));
    }
    for param in parts {
        if let Some((name, value)) = param.split_once('=') {
            if name.trim().eq_ignore_ascii_case("charset")
                && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            {
                return Err(unsupported("charset must be utf-8"));
            }
        }
    }
    Ok(())
}

/// Why a request is not a GraphQL request: a problem+json answer (`Allow: POST` on a 405).
#[derive(Debug)]
pub struct Rejection(ApiError);

impl Rejection {
    /// The problem.
    pub fn error(&self) -> &ApiError {
        &self.0
    }
}

impl From<ApiError> for Rejection {
    fn from(error: ApiError) -> Self {
        Rejection(error)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let allow = self.0.code() == ErrorCode::METHOD_NOT_ALLOWED;
        let mut response = self.0.into_response();
        if allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

impl GraphQLRequest {
    /// Reads a request: `GET` from the query string (`query`, `operationName`, and `variables`
    /// / `extensions` as JSON text), `POST` from an `application/json` body.
    ///
    /// # Errors
    /// The problem+json answers of the module table (400 naming the field, 405, 406, 415).
    pub fn parse(
        method: &Method,
        headers: &HeaderMap,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<Self, Rejection> {
        let format = ResponseFormat::negotiate(headers)?;
        let request = if method == Method::GET {
            let mut request = Params::from_query_string(query.unwrap_or(""))?.into_request()?;
            // GET is for queries: a link or a prefetch must not write.
            if selects_a_mutation(&mut request) {
                return Err(method_not_allowed().into());
            }
            request.data(ReadOnly)
        } else if method == Method::POST {
            is_json_content_type(headers)?;
            Params::from_json(body)?.into_request()?
        } else {
            return Err(method_not_allowed().into());
        };
        Ok(GraphQLRequest { request, format })
    }
}

fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::METHOD_NOT_ALLOWED, "Mutations need POST.")
}

/// The HTTP answer to `response` in `format`: the status the media type calls for, `data`
/// left out of request errors, `Retry-After` on a rate-limited operation.
pub fn respond(format: ResponseFormat, response: &async_graphql::Response) -> Response {
    let request_error = is_request_error(response);
    let code = response.errors.first().and_then(error_code);
    let mut status = match (request_error, format) {
        (true, ResponseFormat::GraphQLResponseJson) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let mut headers = response.http_headers.clone();
    if request_error {
        match code {
            Some("RATE_LIMITED") => {
                status = StatusCode::TOO_MANY_REQUESTS;
                let retry = response.errors.first().and_then(|e| {
                    match e.extensions.as_ref()?.get("retryAfter")? {
                        async_graphql::Value::Number(n) => n.as_u64(),
                        _ => None,
                    }
                });
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry.unwrap_or(1)));
            }
            Some("METHOD_NOT_ALLOWED") => {
                status = StatusCode::METHOD_NOT_ALLOWED;
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
    }
    let body = if request_error {
        // Refused before execution: no `data` entry.
        serde_json::to_string(&RequestErrors {
            errors: &response.errors,
        })
    } else {
        serde_json::to_string(response)
    }
    .unwrap_or_else(|_| r#"{"errors":[{"message":"the response could not be encoded"}]}"#.into());
    let mut answer = (status, body).into_response();
    answer.headers_mut().extend(headers);
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    answer
}

#[derive(serde::Serialize)]
struct RequestErrors<'a> {
    errors: &'a [async_graphql::ServerError],
}

/// The answer for a successful response's already-encoded JSON (a cached one): 200 in `format`.
pub fn respond_encoded(format: ResponseFormat, body: impl Into<Bytes>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        body.into(),
    )
        .into_response()
}

/// `GET` and `POST` for `schema`, with a [`MAX_BODY_BYTES`] body limit: parse, execute,
/// answer.
///
/// ```
/// use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
///
/// struct Query;
/// #[Object]
/// impl Query {
///     async fn hello(&self) -> &'static str { "world" }
/// }
///
/// let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
/// let app: axum::Router = axum::Router::new()
///     .route("/graphql", nilecare_graphql::http::graphql_route(schema));
/// # let _ = app;
/// ```
pub fn graphql_route<Q, M, S, St>(schema: Schema<Q, M, S>) -> MethodRouter<St>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
    St: Clone + Send + Sync + 'static,
{
    let handler = move |method: Method,
                        axum::extract::RawQuery(query): axum::extract::RawQuery,
                        headers: HeaderMap,
                        body: Bytes| {
        let schema = schema.clone();
        async move {
            match GraphQLRequest::parse(&method, &headers, query.as_deref(), &body) {
                Ok(parsed) => respond(parsed.format, &schema.execute(parsed.request).await),
                Err(error) => error.into_response(),
            }
        }
    };
    axum::routing::get(handler.clone())
        .post(handler)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}
