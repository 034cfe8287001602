//! SLA clocks (being written).
