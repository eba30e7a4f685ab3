//! The ADS protocol: a sans-IO per-stream state machine and its tonic edge.
