//! Pure, deterministic translation of the model into Envoy v3 resources.
