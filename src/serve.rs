//! The wiring of `coalmine serve`: sources, snapshots, the xDS server and shutdown.
