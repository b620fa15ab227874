//! PostgreSQL's binary `COPY` format for the read-model tables: the fastest way to load rows
//! (no SQL parsing, no text conversion on the server). Rows are encoded in chunks and streamed.

use sqlx::PgConnection;
use time::{Date, OffsetDateTime};

use crate::model::{ReservationRow, ResourceRow, SlotRow};
use crate::store::to_i32;

/// Bytes encoded before a chunk is sent.
const CHUNK: usize = 1 << 22;
/// Julian day of 2000-01-01, PostgreSQL's epoch for dates.
const PG_EPOCH_JULIAN_DAY: i32 = 2_451_545;
/// Microseconds from the Unix epoch to 2000-01-01T00:00Z.
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// Columns of each table, in COPY order.
pub const RESOURCE_COLUMNS: &str = "resource_id, partition, name, capacity, version";
/// Columns of `availability`.
pub const SLOT_COLUMNS: &str = "resource_id, slot, capacity, held, confirmed, version";
/// Columns of `reservations`.
pub const RESERVATION_COLUMNS: &str = "reservation_id, resource_id, slot_from, slot_to, quantity, customer_id, \
     status, expires_at, payment_ref, cancel_reason, created_at, updated_at, version";

/// A binary COPY stream being encoded.
#[derive(Debug)]
struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    fn new() -> Self {
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0_i32.to_be_bytes());
        buf.extend_from_slice(&0_i32.to_be_bytes());
        Self { buf }
    }

    fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    fn text(&mut self, value: &str) {
        self.buf.extend_from_slice(&i32::try_from(value.len()).unwrap_or(i32::MAX).to_be_bytes());
        self.buf.extend_from_slice(value.as_bytes());
    }

    fn optional_text(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.text(value),
            None => self.buf.extend_from_slice(&(-1_i32).to_be_bytes()),
        }
    }

    fn int4(&mut self, value: i32) {
        self.buf.extend_from_slice(&4_i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    fn int8(&mut self, value: i64) {
        self.buf.extend_from_slice(&8_i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    fn date(&mut self, value: Date) {
        self.int4(value.to_julian_day() - PG_EPOCH_JULIAN_DAY);
    }

    fn timestamptz(&mut self, value: OffsetDateTime) {
        let micros = i64::try_from(value.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        self.int8(micros - PG_EPOCH_UNIX_MICROS);
    }

    fn full(&self) -> bool {
        self.buf.len() >= CHUNK
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096))
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1_i16).to_be_bytes());
        self.buf
    }
}

/// One row of some table, encodable.
pub trait CopyRow {
    /// Appends the row.
    fn encode(&self, encoder: &mut EncoderHandle<'_>);
}

/// What a [`CopyRow`] writes through.
#[derive(Debug)]
pub struct EncoderHandle<'a>(&'a mut Encoder);

impl CopyRow for ResourceRow {
    fn encode(&self, e: &mut EncoderHandle<'_>) {
        let e = &mut *e.0;
        e.row(5);
        e.text(self.resource_id.as_str());
        e.int4(self.partition);
        e.text(self.name.as_str());
        e.int4(to_i32(self.capacity));
        e.int8(self.version);
    }
}

impl CopyRow for SlotRow {
    fn encode(&self, e: &mut EncoderHandle<'_>) {
        let e = &mut *e.0;
        e.row(6);
        e.text(self.resource_id.as_str());
        e.date(self.slot.date());
        e.int4(to_i32(self.capacity));
        e.int4(to_i32(self.held));
        e.int4(to_i32(self.confirmed));
        e.int8(self.version);
    }
}

impl CopyRow for ReservationRow {
    fn encode(&self, e: &mut EncoderHandle<'_>) {
        let e = &mut *e.0;
        e.row(13);
        e.text(&self.reservation_id.to_string());
        e.text(self.reservation_id.resource_id().as_str());
        e.date(self.slot_from.date());
        e.date(self.slot_to.date());
        e.int4(to_i32(self.quantity));
        e.text(self.customer_id.as_str());
        e.text(self.status.as_str());
        e.timestamptz(self.expires_at);
        e.optional_text(self.payment_ref.as_deref());
        e.optional_text(self.cancel_reason.as_deref());
        e.timestamptz(self.created_at);
        e.timestamptz(self.updated_at);
        e.int8(self.version);
    }
}

/// Streams `rows` into `table` (schema-qualified) with `columns`; returns the rows copied.
///
/// # Errors
/// When PostgreSQL refuses the data or fails.
pub async fn copy_in<'r, R: CopyRow + 'r>(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    rows: impl IntoIterator<Item = &'r R>,
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN (FORMAT binary)")).await?;
    let mut encoder = Encoder::new();
    for row in rows {
        row.encode(&mut EncoderHandle(&mut encoder));
        if encoder.full() {
            let chunk = encoder.take();
            if let Err(error) = copy.send(chunk).await {
                let _ = copy.abort("send failed").await;
                return Err(error);
            }
        }
    }
    copy.send(encoder.finish()).await?;
    copy.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_instants_use_the_postgres_epoch() {
        let mut encoder = Encoder::new();
        let start = encoder.buf.len();
        encoder.date(time::macros::date!(2000 - 01 - 02));
        assert_eq!(&encoder.buf[start..], &[0, 0, 0, 4, 0, 0, 0, 1]);
        let start = encoder.buf.len();
        encoder.timestamptz(time::macros::datetime!(2000-01-01 00:00:01 UTC));
        assert_eq!(&encoder.buf[start + 4..], &1_000_000_i64.to_be_bytes());
    }
}
