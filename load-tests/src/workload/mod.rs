//! What each request asks for: the operation mix, the resource (uniform or Zipf-skewed), the
//! date range and quantity of holds and availability reads, and the reservations later
//! requests act on or read.
//!
//! Everything here is pure and cheap per request: resource ids and dates are built once and
//! shared, a request is a handful of random numbers plus one small JSON body. Sending is
//! [`crate::client`]'s job.

pub mod mix;
pub mod pool;

use std::sync::Arc;

use rand::Rng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};
use serde::Serialize;
use time::Date;

pub use self::mix::{Mix, Op};
pub use self::pool::{Accepted, PendingHold, Reservations, Status, Undecided, Verdict};

/// Distinct customer ids the holds are spread over.
const CUSTOMERS: u32 = 10_000;

/// One hold to place: indices into the workload's resources and dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldPlan {
    /// Index of the resource.
    pub resource: u32,
    /// Index of the first day in the date table.
    pub from: u16,
    /// Number of days (1..=`days_max`).
    pub days: u8,
    /// Units held on every day.
    pub quantity: u32,
    /// Index of the customer.
    pub customer: u32,
}

/// One availability read: a resource and a date range drawn like a hold's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    /// The resource id.
    pub resource: Arc<str>,
    /// First day, `YYYY-MM-DD`.
    pub from: Arc<str>,
    /// Day after the last (exclusive), `YYYY-MM-DD`.
    pub to: Arc<str>,
}

/// The next request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// Place this hold.
    Hold(HoldPlan),
    /// Confirm the accepted reservation with this index and id.
    Confirm(u32, Arc<str>),
    /// Cancel the accepted reservation with this index and id.
    Cancel(u32, Arc<str>),
    /// Read this resource's availability.
    Read(ReadPlan),
    /// Read the accepted reservation with this id once the read model reached this position
    /// (its hold answer's; no wait when the answer had none).
    Ryw(Arc<str>, Option<Arc<str>>),
}

impl Planned {
    /// The operation.
    #[must_use]
    pub fn op(&self) -> Op {
        match self {
            Self::Hold(_) => Op::Hold,
            Self::Confirm(..) => Op::Confirm,
            Self::Cancel(..) => Op::Cancel,
            Self::Read(_) => Op::Read,
            Self::Ryw(..) => Op::Ryw,
        }
    }
}

/// Settings of a workload (see the `run` flags of the same names).
#[derive(Debug, Clone)]
pub struct Shape {
    /// Resource-id prefix.
    pub prefix: String,
    /// Number of resources.
    pub resources: u32,
    /// Zipf exponent over resources; 0 is uniform.
    pub zipf: f64,
    /// Operation weights.
    pub mix: Mix,
    /// Longest hold in days.
    pub days_max: u8,
    /// Days a hold or read may start on, from `first_day`.
    pub date_window: u16,
    /// First day a hold or read may start on.
    pub first_day: Date,
    /// Largest quantity.
    pub quantity_max: u32,
    /// Hold TTL sent with holds, if any.
    pub hold_seconds: Option<u32>,
}

/// Generates the requests of a run.
#[derive(Debug)]
pub struct Workload {
    shape: Shape,
    /// Shared with the reads that name them.
    resource_ids: Vec<Arc<str>>,
    /// `YYYY-MM-DD` of `first_day + i`, for every day a hold or read can touch.
    dates: Vec<Arc<str>>,
    zipf: Zipf<f64>,
    rng: SmallRng,
}

/// Body of `POST /v1/reservations`.
#[derive(Debug, Serialize)]
struct HoldBody<'a> {
    resource_id: &'a str,
    from: &'a str,
    to: &'a str,
    quantity: u32,
    customer_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_seconds: Option<u32>,
}

/// Body of `POST /v1/resources`.
#[derive(Debug, Serialize)]
struct DefineBody<'a> {
    resource_id: &'a str,
    name: &'a str,
    capacity: u32,
}

impl Workload {
    /// A workload of `shape`, drawing from `rng`.
    ///
    /// # Errors
    /// When the shape cannot be sampled (no resources, negative Zipf exponent) or its dates
    /// run past year 9999.
    pub fn new(shape: Shape, rng: SmallRng) -> Result<Self, String> {
        let zipf = Zipf::new(f64::from(shape.resources), shape.zipf).map_err(|e| format!("--zipf: {e}"))?;
        let resource_ids = (0..shape.resources).map(|i| format!("{}-r{i}", shape.prefix).into()).collect();
        let days = usize::from(shape.date_window) + usize::from(shape.days_max);
        let mut dates = Vec::with_capacity(days);
        let mut day = shape.first_day;
        for _ in 0..days {
            if !(0..=9999).contains(&day.year()) {
                return Err("the date window runs past year 9999".to_owned());
            }
            dates.push(format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day()).into());
            day = day.next_day().ok_or("the date window runs past the calendar")?;
        }
        Ok(Self { shape, resource_ids, dates, zipf, rng })
    }

    /// The settings.
    #[must_use]
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Id of resource `index`.
    #[must_use]
    pub fn resource_id(&self, index: u32) -> &str {
        &self.resource_ids[index as usize]
    }

    /// `YYYY-MM-DD` of day `index` of the date table.
    #[must_use]
    pub fn date(&self, index: usize) -> &str {
        &self.dates[index]
    }

    /// `from` and `to` (exclusive) of a hold.
    #[must_use]
    pub fn range(&self, hold: &HoldPlan) -> (&str, &str) {
        let from = usize::from(hold.from);
        (self.date(from), self.date(from + usize::from(hold.days)))
    }

    /// The next request: an operation drawn from the mix. A confirm, cancel or
    /// read-your-writes read with no accepted reservation to act on becomes a hold; the flag
    /// says when that happened.
    pub fn next(&mut self, reservations: &mut Reservations) -> (Planned, bool) {
        let op = self.shape.mix.pick(self.rng.random_range(0..self.shape.mix.total()));
        let taken = match op {
            Op::Confirm => reservations.take_to_confirm(&mut self.rng).map(|(i, id)| Planned::Confirm(i, id)),
            Op::Cancel => reservations.take_to_cancel(&mut self.rng).map(|(i, id)| Planned::Cancel(i, id)),
            Op::Ryw => reservations.pick_to_read(&mut self.rng).map(|(id, at)| Planned::Ryw(id, at)),
            Op::Read => return (Planned::Read(self.read()), false),
            Op::Hold | Op::Define => return (Planned::Hold(self.hold()), false),
        };
        match taken {
            Some(planned) => (planned, false),
            None => (Planned::Hold(self.hold()), true),
        }
    }

    /// A random hold.
    pub fn hold(&mut self) -> HoldPlan {
        let resource = self.resource();
        HoldPlan {
            resource,
            from: self.rng.random_range(0..self.shape.date_window),
            days: self.rng.random_range(1..=self.shape.days_max),
            quantity: self.rng.random_range(1..=self.shape.quantity_max),
            customer: self.rng.random_range(0..CUSTOMERS),
        }
    }

    /// A random availability read: resource and days drawn as for a hold.
    pub fn read(&mut self) -> ReadPlan {
        let resource = self.resource();
        let from = usize::from(self.rng.random_range(0..self.shape.date_window));
        let days = usize::from(self.rng.random_range(1..=self.shape.days_max));
        ReadPlan {
            resource: Arc::clone(&self.resource_ids[resource as usize]),
            from: Arc::clone(&self.dates[from]),
            to: Arc::clone(&self.dates[from + days]),
        }
    }

    /// Index of a resource drawn from the Zipf distribution (uniform at exponent 0).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "Zipf samples lie in [1, n]")]
    fn resource(&mut self) -> u32 {
        let rank = self.zipf.sample(&mut self.rng);
        (rank as u32).saturating_sub(1).min(self.shape.resources - 1)
    }

    /// The JSON body of `hold`.
    ///
    /// # Panics
    /// Never: the body's fields always serialize.
    #[must_use]
    pub fn hold_body(&self, hold: &HoldPlan) -> Vec<u8> {
        let (from, to) = self.range(hold);
        let customer = format!("{}-c{}", self.shape.prefix, hold.customer);
        let body = HoldBody {
            resource_id: self.resource_id(hold.resource),
            from,
            to,
            quantity: hold.quantity,
            customer_id: &customer,
            hold_seconds: self.shape.hold_seconds,
        };
        #[allow(clippy::expect_used, reason = "strings and integers always serialize")]
        serde_json::to_vec(&body).expect("a hold body serializes")
    }

    /// The JSON body defining resource `index` with `capacity`.
    #[must_use]
    pub fn define_body(&self, index: u32, capacity: u32) -> Vec<u8> {
        let id = self.resource_id(index);
        #[allow(clippy::expect_used, reason = "strings and integers always serialize")]
        serde_json::to_vec(&DefineBody { resource_id: id, name: id, capacity })
            .expect("a define body serializes")
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use time::macros::date;

    use super::*;

    fn shape(resources: u32, zipf: f64, mix: Mix) -> Shape {
        Shape {
            prefix: "lt-test".to_owned(),
            resources,
            zipf,
            mix,
            days_max: 3,
            date_window: 10,
            first_day: date!(2030 - 12 - 30),
            quantity_max: 2,
            hold_seconds: Some(60),
        }
    }

    fn workload(resources: u32, zipf: f64, mix: Mix) -> Workload {
        Workload::new(shape(resources, zipf, mix), SmallRng::seed_from_u64(1)).expect("valid shape")
    }

    fn workload_with(mix: Mix) -> Workload {
        workload(3, 0.0, mix)
    }

    const HOLDS_ONLY: Mix = Mix { hold: 1, confirm: 0, cancel: 0, read: 0, ryw: 0 };

    #[test]
    fn holds_stay_within_the_shape() {
        let mut workload = workload(5, 0.0, HOLDS_ONLY);
        for _ in 0..2000 {
            let hold = workload.hold();
            assert!(hold.resource < 5);
            assert!(hold.from < 10);
            assert!((1..=3).contains(&hold.days));
            assert!((1..=2).contains(&hold.quantity));
            let (from, to) = workload.range(&hold);
            assert!(from < to, "{from} < {to}");
        }
        assert_eq!(workload.date(0), "2030-12-30");
        assert_eq!(workload.date(2), "2031-01-01");
    }

    #[test]
    fn zipf_skews_towards_the_first_resources() {
        let count = |zipf: f64| {
            let mut workload = workload(100, zipf, HOLDS_ONLY);
            (0..10_000).filter(|_| workload.hold().resource == 0).count()
        };
        let uniform = count(0.0);
        assert!((50..=200).contains(&uniform), "uniform: about 1% on resource 0, got {uniform}");
        let skewed = count(1.2);
        assert!(skewed > 2500, "zipf 1.2: resource 0 is the hottest, got {skewed}");
    }

    #[test]
    fn confirms_and_cancels_fall_back_to_holds_until_something_was_accepted() {
        let mut workload = workload(3, 0.0, Mix { hold: 0, confirm: 1, cancel: 1, read: 0, ryw: 0 });
        let mut reservations = Reservations::default();
        let (first, fell_back) = workload.next(&mut reservations);
        assert_eq!((first.op(), fell_back), (Op::Hold, true));
        reservations.add("r1_x_lt-test-r0".into(), workload.hold(), None, None);
        let (second, fell_back) = workload.next(&mut reservations);
        assert!(matches!(second, Planned::Confirm(0, _) | Planned::Cancel(0, _)) && !fell_back, "{second:?}");
        let (third, fell_back) = workload.next(&mut reservations);
        assert_eq!((third.op(), fell_back), (Op::Hold, true), "the only one is in flight");
        let mut holds_only = workload_with(HOLDS_ONLY);
        assert!(!holds_only.next(&mut reservations).1, "a hold drawn from the mix is no fallback");
    }

    #[test]
    fn reads_stay_within_the_shape() {
        let mut workload = workload(5, 0.0, Mix { hold: 0, confirm: 0, cancel: 0, read: 1, ryw: 0 });
        let mut reservations = Reservations::default();
        let day = |workload: &Workload, date: &str| workload.dates.iter().position(|d| &**d == date);
        for _ in 0..2000 {
            let (planned, fell_back) = workload.next(&mut reservations);
            let Planned::Read(read) = planned else { panic!("only reads: {planned:?}") };
            assert!(!fell_back);
            assert!(workload.resource_ids.contains(&read.resource), "{read:?}");
            let from = day(&workload, &read.from).expect("a day of the table");
            let to = day(&workload, &read.to).expect("a day of the table");
            assert!(from < 10 && (1..=3).contains(&(to - from)), "{read:?}");
        }
        assert!(reservations.all().is_empty() && reservations.pick_to_read(&mut workload.rng).is_none());
    }

    #[test]
    fn reads_follow_the_zipf_of_holds() {
        let mut workload = workload(100, 1.2, HOLDS_ONLY);
        let hottest = (0..10_000).filter(|_| &*workload.read().resource == "lt-test-r0").count();
        assert!(hottest > 2500, "zipf 1.2: resource 0 is the hottest, got {hottest}");
    }

    #[test]
    fn ryw_falls_back_to_a_hold_until_something_was_accepted() {
        let mut workload = workload(3, 0.0, Mix { hold: 0, confirm: 0, cancel: 0, read: 0, ryw: 1 });
        let mut reservations = Reservations::default();
        let (first, fell_back) = workload.next(&mut reservations);
        assert!(matches!(first, Planned::Hold(_)) && fell_back, "{first:?}");
        reservations.add("r1_x_lt-test-r0".into(), workload.hold(), None, Some("2.41".into()));
        for _ in 0..3 {
            let (planned, fell_back) = workload.next(&mut reservations);
            assert_eq!(planned, Planned::Ryw("r1_x_lt-test-r0".into(), Some("2.41".into())));
            assert!(!fell_back);
        }
        assert!(
            reservations.take_to_confirm(&mut workload.rng).is_some(),
            "reading it left it free to confirm"
        );
        let (read, _) = workload.next(&mut reservations);
        assert_eq!(read.op(), Op::Ryw, "a reservation in flight can still be read");
    }

    #[test]
    fn bodies_follow_the_contract() {
        let workload = workload(3, 0.0, HOLDS_ONLY);
        let hold = HoldPlan { resource: 2, from: 1, days: 2, quantity: 1, customer: 9 };
        let body: serde_json::Value = serde_json::from_slice(&workload.hold_body(&hold)).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"resource_id": "lt-test-r2", "from": "2030-12-31", "to": "2031-01-02",
                               "quantity": 1, "customer_id": "lt-test-c9", "hold_seconds": 60})
        );
        let define: serde_json::Value = serde_json::from_slice(&workload.define_body(0, 7)).expect("json");
        assert_eq!(
            define,
            serde_json::json!({"resource_id": "lt-test-r0", "name": "lt-test-r0", "capacity": 7})
        );
    }
}
