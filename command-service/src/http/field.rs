//! Request fields that remember what was wrong with them, so one pass reports every invalid
//! field instead of stopping at the first (as serde's derived deserializers do).
//!
//! A body struct declares its fields as [`Field<String>`] or [`Field<Number>`]; deserializing
//! such a struct from a JSON object never fails (a missing field is [`Field::Missing`], as for
//! `Option`, because [`Field`] deserializes through `deserialize_option`). [`Checker`] then turns each field into a domain value, collecting every error. This
//! module knows JSON kinds and integer bounds, never business rules.

use holdfast_domain::ValueError;
use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

use super::problem::FieldError;

/// One field of a request body as sent: absent (or `null`), of the wrong JSON kind, or present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Field<T> {
    /// Absent or `null`.
    #[default]
    Missing,
    /// Present but of the wrong JSON kind; the reason says what was expected.
    Invalid(String),
    /// Present with the expected JSON kind.
    Present(T),
}

/// A JSON kind a [`Field`] can hold.
pub trait Wire: Sized {
    /// What the field must be, for error messages ("a string").
    const EXPECTED: &'static str;
    /// The value, if it has this kind.
    fn from_json(value: Value) -> Option<Self>;
}

impl Wire for String {
    const EXPECTED: &'static str = "a string";
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl Wire for Number {
    const EXPECTED: &'static str = "a whole number";
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
}

impl<'de, T: Wire> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Through `Option` so that serde treats an absent field like `null`, without
        // `#[serde(default)]` (which would leak into the OpenAPI schema as defaults).
        let Some(value) = Option::<Value>::deserialize(deserializer)? else { return Ok(Self::Missing) };
        let kind = kind(&value);
        Ok(T::from_json(value)
            .map_or_else(|| Self::Invalid(format!("must be {}, got {kind}", T::EXPECTED)), Self::Present))
    }
}

/// The JSON kind of `value`, with an article, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `n` as a `u32` in `lo..=hi`. JSON has one kind of number, so `3`, `3.0` and `3e0` are the
/// same whole number (JSON Schema's `integer` admits all three, and so do we); fractions and
/// out-of-range numbers are refused with the bounds in the message. The domain constructor
/// applied afterwards has the final word.
///
/// # Errors
/// A [`ValueError`] whose field the caller replaces with the JSON field name.
pub fn whole(n: &Number, lo: u32, hi: u32) -> Result<u32, ValueError> {
    let integral = n.as_u64().or_else(|| {
        let f = n.as_f64()?;
        // Whole and within u32, so the cast is exact.
        (f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f)).then_some(f as u64)
    });
    if let Some(v) = integral.and_then(|v| u32::try_from(v).ok()) {
        return Ok(v);
    }
    let reason = if n.as_f64().is_some_and(|f| f.fract() != 0.0) {
        format!("must be a whole number, got {n}")
    } else {
        format!("must be between {lo} and {hi}, got {n}")
    };
    Err(ValueError::new("", reason))
}

/// Collects every field error of one request while converting fields to domain values.
#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    /// A required field, converted by `parse`; `None` (with an error recorded) if it is
    /// missing, of the wrong kind or refused by `parse`.
    pub fn required<W, T>(
        &mut self,
        name: &'static str,
        field: Field<W>,
        parse: impl FnOnce(W) -> Result<T, ValueError>,
    ) -> Option<T> {
        match field {
            Field::Missing => self.fail(name, "is required"),
            other => self.optional(name, other, parse).flatten(),
        }
    }

    /// An optional field: `Some(None)` when absent, `None` (with an error recorded) if invalid.
    pub fn optional<W, T>(
        &mut self,
        name: &'static str,
        field: Field<W>,
        parse: impl FnOnce(W) -> Result<T, ValueError>,
    ) -> Option<Option<T>> {
        match field {
            Field::Missing => Some(None),
            Field::Invalid(reason) => self.fail(name, reason),
            Field::Present(wire) => match parse(wire) {
                Ok(value) => Some(Some(value)),
                Err(error) => self.fail(name, error.reason),
            },
        }
    }

    /// Records an error that names its own field (e.g. a range check reported on `to`).
    pub fn check<T>(&mut self, result: Result<T, ValueError>) -> Option<T> {
        result.map_err(|error| self.errors.push(FieldError::new(error.field, error.reason))).ok()
    }

    /// The value `build` makes from the checked fields, or every error recorded.
    ///
    /// # Errors
    /// Every recorded field error.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Vec<FieldError>> {
        match build() {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(self.errors),
        }
    }

    fn fail<T>(&mut self, name: &'static str, reason: impl Into<String>) -> Option<T> {
        self.errors.push(FieldError::new(name, reason));
        None
    }
}

/// Free text a client may attach (`payment_ref`, `reason`): 1–`max` characters, no control
/// characters.
///
/// # Errors
/// When the text is empty, too long or contains control characters.
pub fn note(text: String, max: usize) -> Result<String, ValueError> {
    let chars = text.chars().count();
    if chars == 0 {
        return Err(ValueError::new("", "must not be empty; omit the field instead"));
    }
    if chars > max {
        return Err(ValueError::new("", format!("must be at most {max} characters, got {chars}")));
    }
    if text.chars().any(char::is_control) {
        return Err(ValueError::new("", "must not contain control characters"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        name: Field<String>,
        count: Field<Number>,
    }

    #[test]
    fn fields_record_kind_errors_instead_of_failing() {
        let body: Body = serde_json::from_str(r#"{"name": 5, "count": "x", "extra": 1}"#).expect("object");
        assert_eq!(body.name, Field::Invalid("must be a string, got a number".into()));
        assert_eq!(body.count, Field::Invalid("must be a whole number, got a string".into()));
        let body: Body = serde_json::from_str(r#"{"name": null}"#).expect("absent fields are missing");
        assert_eq!((body.name, body.count), (Field::Missing, Field::Missing));
    }

    #[test]
    fn whole_numbers_only_within_u32_however_written() {
        let n = |s: &str| serde_json::from_str::<Number>(s).expect("number");
        for (good, value) in [("7", 7), ("7.0", 7), ("7e0", 7), ("0.7e1", 7), ("4294967295", u32::MAX)] {
            assert_eq!(whole(&n(good), 1, 9).ok(), Some(value), "{good}");
        }
        for (bad, reason) in [
            ("-1", "between 1 and 9, got -1"),
            ("-1.0", "between 1 and 9"),
            ("4294967296", "between 1 and 9"),
            ("4294967296.0", "between 1 and 9"),
            ("1e300", "between 1 and 9"),
            ("1.5", "whole number"),
            ("1e-3", "whole number"),
        ] {
            let error = whole(&n(bad), 1, 9).expect_err(bad);
            assert!(error.reason.contains(reason), "{bad}: {}", error.reason);
        }
    }

    #[test]
    fn checker_collects_every_error() {
        let mut check = Checker::default();
        let a: Option<u32> = check.required("a", Field::<Number>::Missing, |_| Ok(1));
        let b =
            check.required("b", Field::Present("x".to_owned()), |_| Err::<u32, _>(ValueError::new("", "no")));
        let c = check.optional("c", Field::<String>::Missing, Ok);
        assert_eq!(c, Some(None));
        let errors = check.finish(|| Some((a?, b?))).expect_err("two errors");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "b"]);
    }

    #[test]
    fn notes_are_bounded() {
        assert!(note("paid".into(), 4).is_ok());
        assert!(note("paid!".into(), 4).is_err());
        assert!(note(String::new(), 4).is_err());
        assert!(note("a\nb".into(), 4).is_err());
    }
}
