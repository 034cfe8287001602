//! On-call schedules (being written).
