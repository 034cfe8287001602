//! Priority, derived from impact and urgency by a matrix the organisation may
//! configure. The matrix in force at the time of a change is applied then and
//! the result recorded, so a later change of matrix never rewrites history.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{DomainError, Impact, Urgency};

/// P1 (most urgent) to P5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
    P5,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 5] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4, Priority::P5];

    /// The wire name (`P1` … `P5`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
            Priority::P5 => "P5",
        }
    }

    /// Parses `P1` … `P5` (case-insensitive).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Impact rows × urgency columns → priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorityMatrix([[Priority; 4]; 4]);

impl Default for PriorityMatrix {
    fn default() -> Self {
        use Priority::{P1, P2, P3, P4, P5};
        Self([[P1, P2, P3, P4], [P2, P3, P4, P5], [P3, P4, P5, P5], [P4, P5, P5, P5]])
    }
}

impl PriorityMatrix {
    /// Builds a matrix from four rows (impact 1..4) of four priority names
    /// (urgency 1..4), as written in the configuration file.
    ///
    /// # Errors
    /// When the shape is not 4×4 or a cell is not `P1`…`P5`.
    pub fn from_rows(rows: &[Vec<String>]) -> Result<Self, DomainError> {
        if rows.len() != 4 || rows.iter().any(|row| row.len() != 4) {
            return Err(DomainError::Invalid(
                "the priority matrix needs 4 rows (impact 1-4) of 4 cells (urgency 1-4)".into(),
            ));
        }
        let mut matrix = Self::default().0;
        for (row_idx, row) in rows.iter().enumerate() {
            for (col_idx, cell) in row.iter().enumerate() {
                matrix[row_idx][col_idx] = Priority::parse(cell).ok_or_else(|| {
                    DomainError::Invalid(format!("priority matrix cell {cell:?} is not one of P1..P5"))
                })?;
            }
        }
        Ok(Self(matrix))
    }

    /// The priority for an impact and an urgency.
    #[must_use]
    pub fn priority(&self, impact: Impact, urgency: Urgency) -> Priority {
        self.0[usize::from(impact.get() - 1)][usize::from(urgency.get() - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(n: u8) -> (Impact, Urgency) {
        (Impact::try_from(n).expect("1..4"), Urgency::try_from(n).expect("1..4"))
    }

    #[test]
    fn default_matrix_gives_p1_for_extensive_critical_and_p5_for_minor_low() {
        let m = PriorityMatrix::default();
        assert_eq!(m.priority(level(1).0, level(1).1), Priority::P1);
        assert_eq!(m.priority(level(2).0, level(3).1), Priority::P4);
        assert_eq!(m.priority(level(4).0, level(4).1), Priority::P5);
    }

    #[test]
    fn configured_matrix_replaces_the_default() {
        let rows: Vec<Vec<String>> = (0..4).map(|_| vec!["P2".to_string(); 4]).collect();
        let m = PriorityMatrix::from_rows(&rows).expect("valid");
        assert_eq!(m.priority(level(4).0, level(4).1), Priority::P2);
    }

    #[test]
    fn malformed_matrix_is_rejected() {
        assert!(PriorityMatrix::from_rows(&[vec!["P1".into()]]).is_err());
        let rows: Vec<Vec<String>> = (0..4).map(|_| vec!["P9".to_string(); 4]).collect();
        assert!(PriorityMatrix::from_rows(&rows).is_err());
    }
}
