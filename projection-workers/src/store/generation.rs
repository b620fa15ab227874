//! Which generation of the read model is live, and entering it in a transaction.
//!
//! A generation's rows live in one schema (`public` for generation 0, `rm_<n>` for rebuilt
//! ones); `read_model_pointer` names the live one. Every statement of the store is written
//! with unqualified table names: [`enter`] sets the transaction's `search_path` to the
//! generation's schema, so the same statements read and write whichever generation the
//! transaction entered. Writers enter with a share lock on the pointer, so a switch (which
//! updates the pointer) waits for their transactions, and theirs wait for it.

use sqlx::PgConnection;

/// A generation of the read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Its number: 0 for the tables the migrations created, then one more per rebuild.
    pub number: i64,
    /// The schema its tables live in.
    pub schema: String,
}

impl Generation {
    /// Generation `number` as rebuilds name it (`rm_<number>`; `public` for 0).
    #[must_use]
    pub fn numbered(number: i64) -> Self {
        let schema = if number == 0 { "public".to_owned() } else { format!("rm_{number}") };
        Self { number, schema }
    }
}

/// How [`enter`] holds the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// No lock: a read (a repeatable-read snapshot is consistent by itself).
    Read,
    /// `FOR SHARE`: a writer; the pointer cannot switch until the transaction ends.
    Write,
    /// `FOR UPDATE`: the switch itself; no writer runs until the transaction ends.
    Switch,
}

/// Reads the live generation and points the transaction's `search_path` at its schema
/// (`SET LOCAL`: it ends with the transaction). Must run inside a transaction.
///
/// # Errors
/// When PostgreSQL fails (or the database is not migrated).
pub async fn enter(conn: &mut PgConnection, hold: Hold) -> Result<Generation, sqlx::Error> {
    let lock = match hold {
        Hold::Read => "",
        Hold::Write => " FOR SHARE",
        Hold::Switch => " FOR UPDATE",
    };
    let sql = format!(
        "SELECT generation, schema_name, set_config('search_path', quote_ident(schema_name), true)
         FROM public.read_model_pointer{lock}"
    );
    let (number, schema, _): (i64, String, String) = sqlx::query_as(&sql).fetch_one(&mut *conn).await?;
    Ok(Generation { number, schema })
}

/// Points the transaction's `search_path` at `schema` (a generation not live yet: a rebuild
/// writing its shadow).
///
/// # Errors
/// When PostgreSQL fails.
pub async fn use_schema(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('search_path', quote_ident($1), true)").bind(schema).execute(conn).await?;
    Ok(())
}
