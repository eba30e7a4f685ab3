//! Parses Istio networking documents (YAML/JSON) into the validated model.
