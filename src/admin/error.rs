//! `ApiError`: every failure of the admin API as a JSON body with per-field details
//! and a 4xx (or 5xx) status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::desired;
use crate::ingest::{Errors, FieldError};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub details: Vec<ErrorDetail>,
}

/// One problem, naming the resource and the field.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub resource: String,
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                details: Vec::new(),
            },
        }
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
    }

    /// Field errors of a document that could not be parsed (400) or of a set that does
    /// not validate (422).
    pub fn invalid(status: StatusCode, errors: Errors) -> Self {
        let error = match errors.0.len() {
            1 => "1 error: nothing was applied".to_string(),
            n => format!("{n} errors: nothing was applied"),
        };
        Self {
            status,
            body: ErrorBody {
                error,
                details: errors.0.into_iter().map(to_detail).collect(),
            },
        }
    }
}

fn to_detail(e: FieldError) -> ErrorDetail {
    ErrorDetail {
        resource: e.resource,
        field: e.field,
        message: e.message,
    }
}

impl From<desired::Error> for ApiError {
    fn from(e: desired::Error) -> Self {
        match e {
            desired::Error::Invalid(errors) => {
                ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, errors)
            }
            desired::Error::NotFound(_) | desired::Error::NoRevision(_) => {
                ApiError::not_found(e.to_string())
            }
            desired::Error::Store(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
