//! Trace context (placeholder: being written).
