//! Holdfast load generator and audit (later work).
