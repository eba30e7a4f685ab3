//! Validation errors that name the resource and the field path; owns nothing else.

use std::fmt;

/// One problem, naming the resource and the field path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// `VirtualService default/web`, or `document 3` while a document has no usable
    /// kind and name.
    pub resource: String,
    /// A path such as `spec.http[0].route[1].weight`; empty for the document as a whole.
    pub field: String,
    pub message: String,
    /// The Gateway API reason, where one applies (e.g. `NoMatchingParent` on a
    /// parentRef): what a Kubernetes status condition says. Not part of API answers.
    #[serde(skip)]
    pub reason: Option<&'static str>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.resource, self.message)
        } else {
            write!(f, "{}: {}: {}", self.resource, self.field, self.message)
        }
    }
}

/// Every problem found; never empty. Displays one line per error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{}", lines(.0))]
pub struct Errors(pub Vec<FieldError>);

fn lines(errors: &[FieldError]) -> String {
    let lines: Vec<String> = errors.iter().map(FieldError::to_string).collect();
    lines.join("\n")
}

pub type Result<T, E = Errors> = std::result::Result<T, E>;

/// Collects the errors of one resource while it is read.
#[derive(Debug)]
pub(crate) struct Report {
    resource: String,
    pub(crate) errors: Vec<FieldError>,
}

impl Report {
    pub(crate) fn new(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            errors: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            resource: self.resource.clone(),
            field: field.into(),
            message: message.into(),
            reason: None,
        });
    }

    /// An error with the Gateway API reason a status condition gives for it.
    pub(crate) fn push_reason(
        &mut self,
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) {
        self.push(field, message);
        if let Some(last) = self.errors.last_mut() {
            last.reason = Some(reason);
        }
    }

    /// Takes over the errors of `other`, naming this report's resource instead.
    pub(crate) fn adopt(&mut self, other: Report) {
        for error in other.errors {
            let reason = error.reason;
            self.push(error.field, error.message);
            if let Some(last) = self.errors.last_mut() {
                last.reason = reason;
            }
        }
    }

    pub(crate) fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_one_line_per_error() {
        let mut report = Report::new("VirtualService default/web");
        report.push("spec.http[0].route[1].weight", "must be between 0 and 100");
        report.push("", "whole document");
        let errors = Errors(report.errors);
        assert_eq!(
            errors.to_string(),
            "VirtualService default/web: spec.http[0].route[1].weight: must be between 0 and 100\n\
             VirtualService default/web: whole document"
        );
    }

    #[test]
    fn serializes_as_a_list_of_details() {
        let errors = Errors(vec![FieldError {
            resource: "document 1".into(),
            field: "kind".into(),
            message: "required".into(),
            reason: None,
        }]);
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            serde_json::json!([{"resource": "document 1", "field": "kind", "message": "required"}])
        );
    }
}
