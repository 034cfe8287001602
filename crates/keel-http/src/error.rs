//! The one error type of the HTTP front door, rendered as RFC 9457
//! `application/problem+json`. Details of internal failures are logged, not
//! sent; a user's mistake always gets a 4xx that says what to fix.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keel_domain::DomainError;
use keel_store::StoreError;
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
    /// Seconds to send as `Retry-After` (with 429 and 503).
    pub retry_after: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title,
            detail: detail.into(),
            retry_after: None,
        }
    }
    /// 429: the sender is over its rate; it may retry after `seconds`.
    pub fn too_many(detail: impl Into<String>, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests", detail)
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", detail)
    }
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid input", detail)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", format!("{what} not found"))
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", detail)
    }
    fn slug(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "bad-request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not-found",
            405 => "method-not-allowed",
            409 => "conflict",
            412 => "precondition-failed",
            413 => "payload-too-large",
            415 => "unsupported-media-type",
            429 => "too-many-requests",
            422 => "invalid-input",
            503 => "unavailable",
            _ => "internal",
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::IllegalTransition { .. } => {
                Self::new(StatusCode::CONFLICT, "Illegal transition", error.to_string())
            }
            DomainError::Invalid(detail) => Self::invalid(detail),
            DomainError::Forbidden(detail) => Self::forbidden(detail),
            DomainError::NoChange(detail) => Self::new(StatusCode::CONFLICT, "No change", detail),
            DomainError::InUse(detail) => Self::new(StatusCode::CONFLICT, "In use", detail),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::not_found(&what),
            StoreError::Domain(domain) => domain.into(),
            StoreError::VersionMismatch { .. } => {
                Self::new(StatusCode::PRECONDITION_FAILED, "Stale version", error.to_string())
            }
            StoreError::Conflict(detail) => Self::new(StatusCode::CONFLICT, "Conflict", detail),
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "the database is unavailable; retry later",
                )
            }
            StoreError::Other(detail) => {
                tracing::error!(%detail, "storage failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: format!("https://keel.dev/problems/{}", self.slug()),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
