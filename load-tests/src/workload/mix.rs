//! The operation mix: how often each kind of request is sent.

use std::fmt;

use serde::Serialize;

/// A kind of request the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `POST /v1/reservations`.
    Hold,
    /// `POST /v1/reservations/{id}/confirm`.
    Confirm,
    /// `POST /v1/reservations/{id}/cancel`.
    Cancel,
    /// `POST /v1/resources` (set-up before the run).
    Define,
}

impl Op {
    /// The operations of the open-model workload, in report order.
    pub const WORKLOAD: [Self; 3] = [Self::Hold, Self::Confirm, Self::Cancel];

    /// Lowercase name, as in `--mix` and the reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::Confirm => "confirm",
            Self::Cancel => "cancel",
            Self::Define => "define",
        }
    }

    /// Position in [`Op::WORKLOAD`]; `Define` comes after it (it is recorded apart).
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Self::Hold => 0,
            Self::Confirm => 1,
            Self::Cancel => 2,
            Self::Define => 3,
        }
    }
}

/// Relative weights of hold, confirm and cancel, e.g. `hold=80,confirm=15,cancel=5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mix {
    /// Weight of holds.
    pub hold: u32,
    /// Weight of confirmations.
    pub confirm: u32,
    /// Weight of cancellations.
    pub cancel: u32,
}

impl Mix {
    /// Parses `name=weight` pairs separated by commas; absent names weigh 0.
    ///
    /// # Errors
    /// Unknown or repeated names, weights that are not whole numbers, or all weights 0.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut mix = Self { hold: 0, confirm: 0, cancel: 0 };
        let mut seen = [false; 3];
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) =
                part.split_once('=').ok_or_else(|| format!("{part:?} is not name=weight"))?;
            let weight: u32 =
                weight.trim().parse().map_err(|_| format!("weight of {name:?} is not a whole number"))?;
            let (slot, index) = match name.trim() {
                "hold" => (&mut mix.hold, 0),
                "confirm" => (&mut mix.confirm, 1),
                "cancel" => (&mut mix.cancel, 2),
                other => return Err(format!("unknown operation {other:?} (use hold, confirm, cancel)")),
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(format!("{name:?} is given twice"));
            }
            *slot = weight;
        }
        if mix.total() == 0 {
            return Err(format!("mix {raw:?} has no positive weight"));
        }
        Ok(mix)
    }

    /// Sum of the weights.
    #[must_use]
    pub fn total(&self) -> u64 {
        u64::from(self.hold) + u64::from(self.confirm) + u64::from(self.cancel)
    }

    /// The operation for `roll`, a number in `0..total()`.
    #[must_use]
    pub fn pick(&self, roll: u64) -> Op {
        if roll < u64::from(self.hold) {
            Op::Hold
        } else if roll < u64::from(self.hold) + u64::from(self.confirm) {
            Op::Confirm
        } else {
            Op::Cancel
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hold={},confirm={},cancel={}", self.hold, self.confirm, self.cancel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_weights_by_name() {
        assert_eq!(Mix::parse("hold=80,confirm=15,cancel=5"), Ok(Mix { hold: 80, confirm: 15, cancel: 5 }));
        assert_eq!(Mix::parse(" cancel=1 , hold=3"), Ok(Mix { hold: 3, confirm: 0, cancel: 1 }));
        for bad in ["", "hold", "hold=x", "hold=-1", "hold=0", "book=3", "hold=1,hold=2"] {
            assert!(Mix::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let mix = Mix::parse("hold=80,confirm=15,cancel=5").expect("valid");
        assert_eq!(mix.to_string(), "hold=80,confirm=15,cancel=5");
    }

    #[test]
    fn picks_follow_the_weights() {
        let mix = Mix { hold: 80, confirm: 15, cancel: 5 };
        assert_eq!(mix.total(), 100);
        let counts = (0..mix.total()).fold([0_u32; 3], |mut counts, roll| {
            counts[mix.pick(roll).index()] += 1;
            counts
        });
        assert_eq!(counts, [80, 15, 5]);
        let only_cancel = Mix { hold: 0, confirm: 0, cancel: 2 };
        assert_eq!(only_cancel.pick(0), Op::Cancel);
    }
}
