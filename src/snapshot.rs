//! Encoded Envoy resources with content-hash versions, shared by every stream.
