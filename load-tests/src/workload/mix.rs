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
    /// `GET /v1/resources/{id}/availability?from=&to=` on the query service.
    Read,
    /// `GET /v1/reservations/{id}?min_position=` on the query service: read-your-writes of an
    /// accepted hold.
    Ryw,
    /// `POST /v1/resources` (set-up before the run).
    Define,
}

impl Op {
    /// The operations of the open-model workload, in report order.
    pub const WORKLOAD: [Self; 5] = [Self::Hold, Self::Confirm, Self::Cancel, Self::Read, Self::Ryw];

    /// Lowercase name, as in `--mix` and the reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::Confirm => "confirm",
            Self::Cancel => "cancel",
            Self::Read => "read",
            Self::Ryw => "ryw",
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
            Self::Read => 3,
            Self::Ryw => 4,
            Self::Define => 5,
        }
    }
}

/// Relative weights of the workload's operations, e.g. `hold=80,confirm=15,cancel=5,read=50`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mix {
    /// Weight of holds.
    pub hold: u32,
    /// Weight of confirmations.
    pub confirm: u32,
    /// Weight of cancellations.
    pub cancel: u32,
    /// Weight of availability reads.
    pub read: u32,
    /// Weight of read-your-writes reads of accepted reservations.
    pub ryw: u32,
}

impl Mix {
    /// Parses `name=weight` pairs separated by commas; absent names weigh 0.
    ///
    /// # Errors
    /// Unknown or repeated names, weights that are not whole numbers, or all weights 0.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut weights = [0_u32; Op::WORKLOAD.len()];
        let mut seen = [false; Op::WORKLOAD.len()];
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) =
                part.split_once('=').ok_or_else(|| format!("{part:?} is not name=weight"))?;
            let weight: u32 =
                weight.trim().parse().map_err(|_| format!("weight of {name:?} is not a whole number"))?;
            let op = Op::WORKLOAD.into_iter().find(|op| op.name() == name.trim()).ok_or_else(|| {
                format!("unknown operation {:?} (use hold, confirm, cancel, read, ryw)", name.trim())
            })?;
            if std::mem::replace(&mut seen[op.index()], true) {
                return Err(format!("{name:?} is given twice"));
            }
            weights[op.index()] = weight;
        }
        let [hold, confirm, cancel, read, ryw] = weights;
        let mix = Self { hold, confirm, cancel, read, ryw };
        if mix.total() == 0 {
            return Err(format!("mix {raw:?} has no positive weight"));
        }
        Ok(mix)
    }

    /// The weights in [`Op::WORKLOAD`] order.
    #[must_use]
    pub fn weights(&self) -> [u32; Op::WORKLOAD.len()] {
        [self.hold, self.confirm, self.cancel, self.read, self.ryw]
    }

    /// Sum of the weights.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.weights().into_iter().map(u64::from).sum()
    }

    /// The operation for `roll`, a number in `0..total()`.
    #[must_use]
    pub fn pick(&self, roll: u64) -> Op {
        let mut below = 0;
        for (op, weight) in Op::WORKLOAD.into_iter().zip(self.weights()) {
            below += u64::from(weight);
            if roll < below {
                return op;
            }
        }
        Op::Ryw
    }
}

impl fmt::Display for Mix {
    /// `hold=..,confirm=..,cancel=..`, then the reads only when they have a weight (they are
    /// opt-in, so a commands-only mix reads as it always did).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hold={},confirm={},cancel={}", self.hold, self.confirm, self.cancel)?;
        for (name, weight) in [("read", self.read), ("ryw", self.ryw)] {
            if weight > 0 {
                write!(f, ",{name}={weight}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn mix(hold: u32, confirm: u32, cancel: u32, read: u32, ryw: u32) -> Mix {
        Mix { hold, confirm, cancel, read, ryw }
    }

    #[test]
    fn mixes_parse_weights_by_name() {
        assert_eq!(Mix::parse("hold=80,confirm=15,cancel=5"), Ok(mix(80, 15, 5, 0, 0)));
        assert_eq!(Mix::parse(" cancel=1 , hold=3"), Ok(mix(3, 0, 1, 0, 0)));
        for bad in ["", "hold", "hold=x", "hold=-1", "hold=0", "book=3", "hold=1,hold=2", "define=1"] {
            assert!(Mix::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let default = Mix::parse("hold=80,confirm=15,cancel=5").expect("valid");
        assert_eq!(default.to_string(), "hold=80,confirm=15,cancel=5");
    }

    #[test]
    fn reads_are_named_in_the_mix() {
        assert_eq!(Mix::parse("hold=80,confirm=15,cancel=5,read=50,ryw=10"), Ok(mix(80, 15, 5, 50, 10)));
        assert_eq!(Mix::parse("ryw=2, read=1"), Ok(mix(0, 0, 0, 1, 2)), "reads alone are a mix");
        assert_eq!(
            Mix::parse("read=3").map(|m| m.to_string()),
            Ok("hold=0,confirm=0,cancel=0,read=3".into())
        );
        for bad in ["read=1,read=2", "ryw=x", "reads=1", "read=0,ryw=0"] {
            assert!(Mix::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let text = mix(8, 1, 1, 5, 2).to_string();
        assert_eq!(text, "hold=8,confirm=1,cancel=1,read=5,ryw=2");
        assert_eq!(Mix::parse(&text), Ok(mix(8, 1, 1, 5, 2)), "the report's mix parses back");
    }

    #[test]
    fn picks_follow_the_weights() {
        let count = |mix: Mix| {
            (0..mix.total()).fold([0_u32; Op::WORKLOAD.len()], |mut counts, roll| {
                counts[mix.pick(roll).index()] += 1;
                counts
            })
        };
        let commands = mix(80, 15, 5, 0, 0);
        assert_eq!(commands.total(), 100);
        assert_eq!(count(commands), [80, 15, 5, 0, 0]);
        assert_eq!(count(mix(3, 0, 2, 4, 1)), [3, 0, 2, 4, 1]);
        assert_eq!(mix(0, 0, 2, 0, 0).pick(0), Op::Cancel);
        assert_eq!(mix(0, 0, 0, 0, 1).pick(0), Op::Ryw);
    }
}
