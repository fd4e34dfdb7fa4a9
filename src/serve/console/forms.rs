//! A submitted form (`application/x-www-form-urlencoded`), with repeated
//! fields kept, read by `serde_urlencoded` through axum's `Form`; and a
//! form's outcome, shown on the page it came from.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};

/// A form's fields in the order sent.
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of `name`, or "".
    pub(super) fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, or none when empty.
    pub(super) fn opt(&self, name: &str) -> Option<String> {
        let v = self.get(name).trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    /// Every value of `name`.
    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Form, Response> {
        match axum::Form::<Vec<(String, String)>>::from_request(req, state).await {
            Ok(axum::Form(fields)) => Ok(Form(fields)),
            Err(e) => Err((e.status(), "the form could not be read").into_response()),
        }
    }
}

/// A form's outcome shown on the page it came from.
#[derive(Default)]
pub(super) struct Outcome {
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl Outcome {
    pub(super) fn error(e: String) -> Outcome {
        Outcome {
            notice: None,
            error: Some(e),
        }
    }
}

#[cfg(test)]
impl Form {
    pub(super) fn of(fields: &[(&str, &str)]) -> Form {
        Form(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}
