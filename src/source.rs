//! Reads resources from a file or folder of YAML and watches it for changes.
