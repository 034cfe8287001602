//! Detection policy end to end (written next).
