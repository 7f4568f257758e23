//! One SQL vocabulary for both relational backends, so the mailbox operations, the reads and
//! the writer's group commit are written once and run unchanged on SQLite and PostgreSQL.
//!
//! Why not a crate: the one crate that speaks both (`sqlx`) cannot sit in one build with
//! `rusqlite` (STACK §8), and Herald's operations are synchronous code on a writer thread
//! holding one transaction open across many statements, which is what `rusqlite` does natively
//! and what `tokio-postgres` does once each statement is awaited in place (`postgres::conn`).
//! What is left to bridge is small and written here:
//!
//! - [`Db`]: run a statement, read its rows, run transaction control. Implemented for
//!   `rusqlite::Connection` (below) and for a pooled PostgreSQL connection.
//! - [`Arg`] and [`Value`]: SQLite's dynamic types (integer, real, text, blob, NULL) carried to
//!   both engines. PostgreSQL is strictly typed, so an [`Arg`] encodes itself as whatever type
//!   the server inferred for its parameter (an integer for an `int4` or `bool` column, say),
//!   and a column of any type decodes into a [`Value`] (`bool` and `numeric` as integers).
//!   Herald's PostgreSQL schema keeps SQLite's shapes (every integer `bigint`) so that the
//!   same statement means the same thing on both.
//! - Placeholders are written `?N` as SQLite has them; the PostgreSQL side rewrites them to
//!   `$N` ([`numbered`]). Where the dialects differ (`max(a, b)` against `GREATEST`, where
//!   the last event id is kept), callers pick with [`Db::dialect`].
//!
//! The API mirrors the `rusqlite` calls the operations were first written with
//! (`prepare_cached`, `query_row`, `optional`), so that code reads as it did.

pub(crate) mod acl;
pub(crate) mod metadata;
pub(crate) mod ops;
pub(crate) mod prune;
pub(crate) mod reads;
pub(crate) mod writer;

use crate::blobs::BlobDir;
use crate::config::StoreConfig;
use crate::notify::Notifier;
use herald_events::UidSet;
use std::borrow::Cow;

/// What the operations, reads and writer share with the backend that runs them.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The store's configuration.
    pub config: StoreConfig,
    /// Where content larger than `inline_blob_max` lives, for a backend that keeps it in
    /// files (the embedded one); `None` keeps every message inside the database.
    pub blobs: Option<BlobDir>,
    /// This process's commit notifications.
    pub notifier: Notifier,
}

/// Which engine a [`Db`] talks to, for the few statements the dialects spell differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (the embedded backend).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// What can go wrong running SQL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A statement that must return a row returned none.
    #[error("the query returned no row")]
    NoRow,
    /// A column held a value of another type or range than the code reads.
    #[error("column {column}: {why}")]
    Type {
        /// Column index.
        column: usize,
        /// What was found.
        why: String,
    },
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// A PostgreSQL connection could not be had from the pool.
    #[error("no PostgreSQL connection: {0}")]
    Pool(String),
}

/// The result of SQL.
pub type Result<T> = std::result::Result<T, Error>;

/// A statement parameter: SQLite's dynamic types.
#[derive(Debug, Clone)]
pub enum Arg<'a> {
    /// NULL.
    Null,
    /// An integer (also booleans, as 0 and 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(Cow<'a, str>),
    /// Bytes.
    Blob(Cow<'a, [u8]>),
}

/// A value read from a row, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// NULL.
    Null,
    /// An integer (PostgreSQL booleans and integral `numeric`s too).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

/// Anything that can be a statement parameter.
pub trait ToArg {
    /// The parameter, borrowing from `self` where it can.
    fn to_arg(&self) -> Arg<'_>;
}

macro_rules! int_args {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn to_arg(&self) -> Arg<'_> {
                Arg::Int(*self as i64)
            }
        }
    )*};
}
int_args!(i64, i32, i16, u32, u16, u8, usize, u64);

impl ToArg for bool {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Int(i64::from(*self))
    }
}
impl ToArg for f64 {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Real(*self)
    }
}
impl ToArg for str {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(Cow::Borrowed(self))
    }
}
impl ToArg for String {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(Cow::Borrowed(self))
    }
}
impl ToArg for [u8] {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Blob(Cow::Borrowed(self))
    }
}
impl ToArg for Vec<u8> {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Blob(Cow::Borrowed(self))
    }
}
impl<const N: usize> ToArg for [u8; N] {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Blob(Cow::Borrowed(self))
    }
}
impl<T: ToArg> ToArg for Option<T> {
    fn to_arg(&self) -> Arg<'_> {
        self.as_ref().map_or(Arg::Null, ToArg::to_arg)
    }
}
impl<T: ToArg + ?Sized> ToArg for &T {
    fn to_arg(&self) -> Arg<'_> {
        (**self).to_arg()
    }
}
impl ToArg for Arg<'_> {
    fn to_arg(&self) -> Arg<'_> {
        self.clone()
    }
}

/// Statement parameters: `params![a, b]`, an array of one type, or `()` for none.
pub trait Params {
    /// Runs `f` with the parameters as a slice.
    fn with<R>(self, f: impl FnOnce(&[Arg<'_>]) -> R) -> R;
}

impl Params for &[Arg<'_>] {
    fn with<R>(self, f: impl FnOnce(&[Arg<'_>]) -> R) -> R {
        f(self)
    }
}
impl<const N: usize> Params for &[Arg<'_>; N] {
    fn with<R>(self, f: impl FnOnce(&[Arg<'_>]) -> R) -> R {
        f(self)
    }
}
impl<T: ToArg, const N: usize> Params for [T; N] {
    fn with<R>(self, f: impl FnOnce(&[Arg<'_>]) -> R) -> R {
        let args: Vec<Arg<'_>> = self.iter().map(ToArg::to_arg).collect();
        f(&args)
    }
}
impl Params for () {
    fn with<R>(self, f: impl FnOnce(&[Arg<'_>]) -> R) -> R {
        f(&[])
    }
}

/// `params![a, b, c]`: statement parameters of mixed types, borrowed for the statement.
macro_rules! params {
    ($($e:expr),* $(,)?) => {
        &[$($crate::sql::ToArg::to_arg(&$e)),*][..]
    };
}
pub(crate) use params;

/// A column index (`usize` only, so an integer literal needs no annotation).
pub trait Col {
    /// The zero-based index.
    fn index(self) -> usize;
}
impl Col for usize {
    fn index(self) -> usize {
        self
    }
}

/// Reading a Rust value out of a column.
pub trait FromValue: Sized {
    /// Converts the column's value, or says why it cannot.
    fn from_value(v: Value<'_>) -> std::result::Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(v: Value<'_>) -> std::result::Result<i64, String> {
        match v {
            Value::Int(i) => Ok(i),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value<'_>) -> std::result::Result<$t, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
int_values!(i32, i16, u32, u16, u8, usize, u64);

impl FromValue for bool {
    fn from_value(v: Value<'_>) -> std::result::Result<bool, String> {
        Ok(i64::from_value(v)? != 0)
    }
}
impl FromValue for f64 {
    fn from_value(v: Value<'_>) -> std::result::Result<f64, String> {
        match v {
            Value::Real(r) => Ok(r),
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}
impl FromValue for String {
    fn from_value(v: Value<'_>) -> std::result::Result<String, String> {
        match v {
            Value::Text(t) => Ok(t.to_owned()),
            Value::Blob(b) => String::from_utf8(b.to_vec()).map_err(|e| e.to_string()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: Value<'_>) -> std::result::Result<Vec<u8>, String> {
        match v {
            Value::Blob(b) => Ok(b.to_vec()),
            Value::Text(t) => Ok(t.as_bytes().to_vec()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value<'_>) -> std::result::Result<Option<T>, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a result.
pub trait Row {
    /// Column `i`'s value.
    fn value(&self, i: usize) -> Result<Value<'_>>;
}

impl dyn Row + '_ {
    /// Column `i` as a `T` (`r.get(0)`, or `r.get::<_, i64>(0)` as with `rusqlite`).
    pub fn get<I: Col, T: FromValue>(&self, i: I) -> Result<T> {
        let i = i.index();
        T::from_value(self.value(i)?).map_err(|why| Error::Type { column: i, why })
    }
}

/// A connection to a relational engine; see the module documentation.
pub trait Db {
    /// The engine's dialect.
    fn dialect(&self) -> Dialect;
    /// Runs one statement and returns how many rows it changed.
    fn run(&self, sql: &str, args: &[Arg<'_>]) -> Result<usize>;
    /// Runs one statement and calls `f` with each row, in order.
    fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()>;
    /// Runs statements without parameters or results (transaction control, DDL).
    fn batch(&self, sql: &str) -> Result<()>;
}

impl dyn Db + '_ {
    /// A statement to run once or many times (the engine caches its preparation).
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        Ok(Stmt {
            db: self,
            sql: sql.to_owned(),
        })
    }

    /// [`prepare_cached`](Self::prepare_cached): every statement is cached.
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        self.prepare_cached(sql)
    }

    /// Runs one statement and returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        params.with(|args| self.run(sql, args))
    }

    /// The first row's `f`, or [`Error::NoRow`].
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&dyn Row) -> Result<T>,
    ) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        params.with(|args| {
            self.each(sql, args, &mut |row| {
                if let Some(f) = f.take() {
                    out = Some(f(row)?);
                }
                Ok(())
            })
        })?;
        out.ok_or(Error::NoRow)
    }

    /// Every row's `f`, in order.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: impl Params,
        mut f: impl FnMut(&dyn Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        params.with(|args| {
            self.each(sql, args, &mut |row| {
                out.push(f(row)?);
                Ok(())
            })
        })?;
        Ok(out)
    }

    /// Runs statements without parameters or results.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        self.batch(sql)
    }

    /// `sqlite` or `postgres`, by this connection's dialect.
    pub fn pick<'s>(&self, sqlite: &'s str, postgres: &'s str) -> &'s str {
        match self.dialect() {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }
}

/// The last outbox id given out, as a scalar SQL expression. Inside the writer's transaction it
/// counts that transaction's own events too (PostgreSQL records the head only at commit).
pub(crate) fn last_event_id_sql(db: &dyn Db) -> &'static str {
    db.pick(
        crate::embedded::schema::LAST_EVENT_ID,
        "GREATEST((SELECT last_id FROM outbox_head), (SELECT COALESCE(MAX(id), 0) FROM outbox))",
    )
}

/// The UID ranges a read of `uids` in one mailbox walks (`None`: all of it). A set's own ranges
/// when each covers a few UIDs on average, one seek each; else a single range from its least
/// to its greatest UID, whose rows the caller filters with [`UidSet::contains`], because a
/// seek costs several rows' steps. An empty set walks nothing: a client's `UID STORE` of a
/// UID that is gone must not read the mailbox.
fn uid_spans(uids: Option<&UidSet>) -> Vec<(u32, u32)> {
    let Some(set) = uids else {
        return vec![(1, u32::MAX)];
    };
    let Some((lo, hi)) = set.bounds() else {
        return Vec::new();
    };
    let ranges = set.ranges();
    if ranges.len() as u64 * 4 <= u64::from(hi - lo) + 1 {
        ranges.to_vec()
    } else {
        vec![(lo, hi)]
    }
}

/// The rows of `uids` in one mailbox (`None`: all), unsorted: `read(lo, hi)` runs the
/// caller's statement over one of the [`uid_spans`], and rows whose `uid` is outside the set
/// are dropped.
pub(crate) fn read_uids<T>(
    uids: Option<&UidSet>,
    uid: impl Fn(&T) -> u32,
    mut read: impl FnMut(u32, u32) -> Result<Rows<T>>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (lo, hi) in uid_spans(uids) {
        for row in read(lo, hi)? {
            let row = row?;
            if uids.is_none_or(|s| s.contains(uid(&row))) {
                out.push(row);
            }
        }
    }
    Ok(out)
}

/// The rows of [`Stmt::query_map`], each already read.
pub type Rows<T> = std::iter::Map<std::vec::IntoIter<T>, fn(T) -> Result<T>>;

/// A statement bound to its connection (see [`Db::prepare_cached`]).
pub struct Stmt<'c> {
    db: &'c dyn Db,
    sql: String,
}

impl Stmt<'_> {
    /// Runs it and returns how many rows it changed.
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        self.db.execute(&self.sql, params)
    }
    /// The first row's `f`, or [`Error::NoRow`].
    pub fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&dyn Row) -> Result<T>,
    ) -> Result<T> {
        self.db.query_row(&self.sql, params, f)
    }
    /// Every row's `f`, as an iterator of results (collect it with `collect::<Result<_>>`).
    pub fn query_map<T, P, F>(&mut self, params: P, f: F) -> Result<Rows<T>>
    where
        P: Params,
        F: FnMut(&dyn Row) -> Result<T>,
    {
        let rows = self.db.query_map(&self.sql, params, f)?;
        Ok(rows.into_iter().map(Ok as fn(T) -> Result<T>))
    }
}

/// `.optional()` on a [`Result`]: [`Error::NoRow`] becomes `None`.
pub trait OptionalExtension<T> {
    /// `Ok(None)` for [`Error::NoRow`], the rest unchanged.
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRow) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Rewrites SQLite's `?N` placeholders (and bare `?`, numbered in order) to PostgreSQL's `$N`.
/// A `?` inside a quoted string or identifier is left alone.
pub fn numbered(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut next = 1usize;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                out.push('$');
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            (None, c) => out.push(c),
        }
    }
    Cow::Owned(out)
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Arg::Null => ValueRef::Null,
            Arg::Int(i) => ValueRef::Integer(*i),
            Arg::Real(r) => ValueRef::Real(*r),
            Arg::Text(t) => ValueRef::Text(t.as_bytes()),
            Arg::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

struct SqliteRow<'a, 'b>(&'a rusqlite::Row<'b>);

impl Row for SqliteRow<'_, '_> {
    fn value(&self, i: usize) -> Result<Value<'_>> {
        use rusqlite::types::ValueRef;
        Ok(match self.0.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Int(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(t) => Value::Text(std::str::from_utf8(t).map_err(|e| Error::Type {
                column: i,
                why: e.to_string(),
            })?),
            ValueRef::Blob(b) => Value::Blob(b),
        })
    }
}

impl Db for rusqlite::Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn run(&self, sql: &str, args: &[Arg<'_>]) -> Result<usize> {
        Ok(self
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(args))?)
    }

    fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            f(&SqliteRow(row))?;
        }
        Ok(())
    }

    fn batch(&self, sql: &str) -> Result<()> {
        // From the statement cache when it is one statement: `execute_batch` parses anew each
        // time, which the profile of a busy server showed at 9% of its CPU for SAVEPOINTs.
        if !sql.trim_end().trim_end_matches(';').contains(';') {
            self.prepare_cached(sql)?.execute([])?;
            return Ok(());
        }
        Ok(self.execute_batch(sql)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_spans_seek_sparse_sets_and_scan_dense_ones() {
        assert_eq!(uid_spans(None), vec![(1, u32::MAX)]);
        // A gone UID resolves to an empty set: nothing to read, not the whole mailbox.
        assert_eq!(
            uid_spans(Some(&UidSet::default())),
            Vec::<(u32, u32)>::new()
        );
        assert_eq!(uid_spans(Some(&UidSet::single(7))), vec![(7, 7)]);
        let far = UidSet::from_uids([3, 15_000]);
        assert_eq!(uid_spans(Some(&far)), vec![(3, 3), (15_000, 15_000)]);
        // Every other UID: one walk over the span beats a seek per UID.
        let dense = UidSet::from_uids([1, 3, 5, 7, 9]);
        assert_eq!(uid_spans(Some(&dense)), vec![(1, 9)]);
    }

    #[test]
    fn placeholders_become_dollar_numbers_outside_quotes() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ?2 AND c = ?1"),
            "SELECT a FROM t WHERE b = $2 AND c = $1"
        );
        assert_eq!(numbered("VALUES (?, ?)"), "VALUES ($1, $2)");
        assert_eq!(numbered("SELECT '?' , ?1"), "SELECT '?' , $1");
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn sqlite_rows_convert_and_range_errors_name_the_column() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let db: &dyn Db = &conn;
        db.execute_batch("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)")
            .unwrap();
        db.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            params![-1i64, "x", vec![1u8, 2]],
        )
        .unwrap();
        let (a, b, c): (i64, String, Vec<u8>) = db
            .query_row("SELECT a, b, c FROM t", (), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((a, b.as_str(), c), (-1, "x", vec![1, 2]));
        let e = db
            .query_row("SELECT a FROM t", (), |r| r.get::<_, u32>(0))
            .unwrap_err();
        assert!(e.to_string().contains("column 0"), "{e}");
        assert!(matches!(
            db.query_row("SELECT a FROM t WHERE a = 5", (), |r| r.get::<_, i64>(0)),
            Err(Error::NoRow)
        ));
        let none: Option<i64> = db
            .query_row("SELECT a FROM t WHERE a = 5", (), |r| r.get(0))
            .optional()
            .unwrap();
        assert_eq!(none, None);
    }
}
