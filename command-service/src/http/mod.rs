//! The HTTP command API.
