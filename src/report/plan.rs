//! The plan a dry run's or an audit's report shows: per field, the desired values and how many
//! rows ask for each (a password only counted, never shown), and the invalid rows with their
//! reasons. Counted record by record while the report reads the file, in bounded memory: at
//! most `MAX_FIELDS` fields and `MAX_VALUES` distinct values are counted one by one (the rest
//! as "other values"), and the first `INVALID_SHOWN` invalid rows are kept. Uses `targets` (to
//! read a planned row's fields from its shown body) and `core`.

use std::collections::HashMap;

use serde::Serialize;

use crate::core::run_state::Outcome;
use crate::core::text::shorten;
use crate::targets::Target;

/// Values shown per field, the most frequent first; the rest are summed up.
pub const VALUES_SHOWN: usize = 20;
/// Distinct (field, value) pairs counted one by one, all fields together.
const MAX_VALUES: usize = 20_000;
/// Distinct field names counted (an audit file's `field` column may be crafted).
const MAX_FIELDS: usize = 32;
/// Invalid rows listed with their reason; the rest are counted.
pub const INVALID_SHOWN: usize = 100;
/// The field name a password change has in a plan.
const PASSWORD: &str = "password";
/// Characters kept of a value, a field name and an invalid row's cells (a valid value has at
/// most 256; a crafted file's longer ones are cut, so memory stays bounded).
const VALUE_CHARS: usize = 260;
const FIELD_CHARS: usize = 64;
const REASON_CHARS: usize = 500;

/// One desired value and the rows that ask for it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

/// One field of the plan.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FieldPlan {
    pub field: String,
    /// Rows that set the field.
    pub rows: u64,
    /// The most frequent values (none for a password).
    pub values: Vec<ValueCount>,
    /// Rows whose value is not shown, and how many distinct values they hold (`other_more`:
    /// at least that many, when values past the counting bound are among them).
    pub other_rows: u64,
    pub other_values: u64,
    pub other_more: bool,
}

/// An invalid row, as the plan lists it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct InvalidRow {
    pub line: String,
    pub customer_id: String,
    pub user_id: String,
    pub reason: String,
}

/// What the plan section of a report shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub fields: Vec<FieldPlan>,
    pub invalid: Vec<InvalidRow>,
    /// Invalid rows past the first `INVALID_SHOWN`.
    pub invalid_more: u64,
}

/// Per field: rows, and rows of values past the counting bound.
#[derive(Default)]
struct FieldCounts {
    rows: u64,
    untracked: u64,
}

/// Counts the plan while a file is read.
#[derive(Default)]
pub struct PlanTally {
    /// In the order first seen (sorted when the plan is made).
    fields: Vec<(String, FieldCounts)>,
    values: HashMap<(usize, String), u64>,
    invalid: Vec<InvalidRow>,
    invalid_more: u64,
}

impl PlanTally {
    /// A row (once per row): a dry run's planned row counts its fields; an invalid row is listed.
    /// `row` gives the row's cells, asked for only for an invalid row.
    pub fn add_row(
        &mut self,
        outcome: Outcome,
        body: &str,
        target: &dyn Target,
        row: impl FnOnce() -> InvalidRow,
    ) {
        match outcome {
            Outcome::Planned => {
                for (field, value) in target.shown_fields(body) {
                    self.add_value(field, value.as_deref());
                }
            }
            Outcome::Invalid if self.invalid.len() < INVALID_SHOWN => {
                let row = row();
                let reason = crate::core::redact::redact(&row.reason);
                self.invalid.push(InvalidRow {
                    line: shorten(&row.line, FIELD_CHARS),
                    customer_id: shorten(&row.customer_id, FIELD_CHARS),
                    user_id: shorten(&row.user_id, FIELD_CHARS),
                    reason: shorten(&reason, REASON_CHARS),
                });
            }
            Outcome::Invalid => self.invalid_more += 1,
            _ => {}
        }
    }

    /// An audit's field record: the value the row asks for (rows that would change and rows
    /// already as desired alike: a run sends both).
    pub fn add_audit_field(&mut self, outcome: Outcome, field: &str, desired: &str) {
        if field.is_empty() || !matches!(outcome, Outcome::WouldChange | Outcome::Unchanged) {
            return;
        }
        self.add_value(field, Some(desired));
    }

    /// One field a row sets, with its value (never kept for a password).
    fn add_value(&mut self, field: &str, value: Option<&str>) {
        let field = &shorten(field, FIELD_CHARS);
        let at = match self.fields.iter().position(|(f, _)| f == field) {
            Some(at) => at,
            None if self.fields.len() < MAX_FIELDS => {
                self.fields
                    .push((field.to_string(), FieldCounts::default()));
                self.fields.len() - 1
            }
            None => return,
        };
        let counts = &mut self.fields[at].1;
        counts.rows += 1;
        let Some(value) = value.filter(|_| field != PASSWORD) else {
            return;
        };
        let key = (at, shorten(value, VALUE_CHARS));
        if self.values.len() < MAX_VALUES || self.values.contains_key(&key) {
            *self.values.entry(key).or_default() += 1;
        } else {
            counts.untracked += 1;
        }
    }

    /// The plan: per field (by name, the password last) its most frequent values, then the
    /// invalid rows.
    pub fn finish(self) -> Plan {
        let mut per_field: Vec<Vec<ValueCount>> = vec![Vec::new(); self.fields.len()];
        for ((at, value), count) in self.values {
            per_field[at].push(ValueCount { value, count });
        }
        let mut fields: Vec<FieldPlan> = self
            .fields
            .into_iter()
            .zip(per_field)
            .map(|((field, counts), mut values)| {
                values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
                let hidden = values.split_off(values.len().min(VALUES_SHOWN));
                let hidden_rows: u64 = hidden.iter().map(|v| v.count).sum();
                for v in &mut values {
                    v.value = crate::core::redact::redact(&v.value).into_owned();
                }
                FieldPlan {
                    field,
                    rows: counts.rows,
                    values,
                    other_rows: hidden_rows + counts.untracked,
                    other_values: hidden.len() as u64 + u64::from(counts.untracked > 0),
                    other_more: counts.untracked > 0,
                }
            })
            .collect();
        fields
            .sort_by(|a, b| (a.field == PASSWORD, &a.field).cmp(&(b.field == PASSWORD, &b.field)));
        Plan {
            fields,
            invalid: self.invalid,
            invalid_more: self.invalid_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(line: u64) -> InvalidRow {
        InvalidRow {
            line: line.to_string(),
            customer_id: "c".into(),
            user_id: "u".into(),
            reason: "user_id is empty".into(),
        }
    }

    #[test]
    fn values_are_counted_the_most_frequent_shown_and_passwords_only_counted() {
        let mut t = PlanTally::default();
        for i in 0..30u32 {
            // DE 11 times, then 19 values once each; FR on every row.
            let value = match i {
                0..=10 => "DE".to_string(),
                _ => format!("V{i:02}"),
            };
            t.add_audit_field(Outcome::WouldChange, "usageLocation", &value);
            t.add_audit_field(Outcome::Unchanged, "usageLocation", "FR");
            t.add_audit_field(Outcome::WouldChange, PASSWORD, "Secret-1!");
        }
        t.add_audit_field(Outcome::NotFound, "usageLocation", "DE");
        let plan = t.finish();
        let f = &plan.fields[0];
        assert_eq!((f.field.as_str(), f.rows), ("usageLocation", 60));
        assert_eq!(f.values.len(), VALUES_SHOWN);
        assert_eq!(
            f.values[0],
            ValueCount {
                value: "FR".into(),
                count: 30
            }
        );
        assert_eq!(
            f.values[1],
            ValueCount {
                value: "DE".into(),
                count: 11
            }
        );
        // 21 distinct values: FR, DE and 18 of the singletons shown, one left.
        assert_eq!((f.other_rows, f.other_values, f.other_more), (1, 1, false));
        let p = &plan.fields[1];
        assert_eq!((p.field.as_str(), p.rows), (PASSWORD, 30));
        assert!(p.values.is_empty() && !format!("{plan:?}").contains("Secret"));
    }

    #[test]
    fn memory_is_bounded_and_the_rest_is_counted() {
        let mut t = PlanTally::default();
        for i in 0..(MAX_VALUES + 5) {
            t.add_audit_field(Outcome::WouldChange, "displayName", &format!("n{i}"));
        }
        for i in 0..(MAX_FIELDS + 3) {
            t.add_audit_field(Outcome::WouldChange, &format!("f{i}"), "x");
        }
        assert!(t.values.len() <= MAX_VALUES && t.fields.len() <= MAX_FIELDS);
        let plan = t.finish();
        let f = &plan.fields[0];
        assert_eq!(f.rows, MAX_VALUES as u64 + 5);
        assert_eq!(
            f.other_rows + f.values.iter().map(|v| v.count).sum::<u64>(),
            f.rows
        );
        assert!(f.other_more);
        // A crafted value is cut.
        let mut t = PlanTally::default();
        t.add_audit_field(Outcome::WouldChange, "displayName", &"x".repeat(100_000));
        assert!(t.finish().fields[0].values[0].value.chars().count() <= VALUE_CHARS + 1);
    }

    #[test]
    fn invalid_rows_are_listed_up_to_the_bound() {
        let mut t = PlanTally::default();
        let target = crate::targets::default_target();
        for line in 2..(INVALID_SHOWN as u64 + 7) {
            t.add_row(Outcome::Invalid, "", &*target, || invalid(line));
        }
        t.add_row(
            Outcome::Planned,
            r#"{"usageLocation":"DE"}"#,
            &*target,
            || invalid(0),
        );
        let plan = t.finish();
        assert_eq!(plan.invalid.len(), INVALID_SHOWN);
        assert_eq!(plan.invalid[0], invalid(2));
        assert_eq!(plan.invalid_more, 5);
        assert_eq!(
            plan.fields[0].values[0],
            ValueCount {
                value: "DE".into(),
                count: 1
            }
        );
    }
}
