//! A pooled PostgreSQL connection as a synchronous [`Db`], so the operations written once for
//! both engines (`crate::sql`) run on it unchanged.
//!
//! Why synchronous: an operation is a sequence of statements whose later ones depend on the
//! earlier ones' rows, inside one transaction the writer thread holds open, exactly as on
//! SQLite. The writer thread (and a read's blocking thread) awaits each statement in place
//! with [`Handle::block_on`] on the process's one runtime, which keeps driving the
//! connection's socket; no second runtime is started. Pipelining statements of one operation
//! would need the operations rewritten as async code for one engine only; group commit already
//! amortises what matters most, the commit's flush.
//!
//! Statements are prepared once per connection (`deadpool_postgres`' statement cache, keyed by
//! the rewritten text), and parameters take the types the server inferred ([`Arg`]'s `ToSql`).

use crate::sql::{self, Arg, Db, Dialect, Row, Value, numbered};
use bytes::BytesMut;
use deadpool_postgres::Object;
use std::error::Error as StdError;
use tokio::runtime::Handle;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn StdError + Sync + Send>;

/// One connection taken from the pool, used from a thread outside the runtime.
pub(crate) struct PgDb {
    client: Object,
    handle: Handle,
}

impl PgDb {
    /// Wraps `client`; `handle` is the runtime its connection task runs on.
    pub(crate) fn new(client: Object, handle: Handle) -> PgDb {
        PgDb { client, handle }
    }

    /// True once the server or the network closed the connection: it is of no more use.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Runs statements without parameters in one round trip (PostgreSQL's simple query
    /// protocol) and returns the first column of the first row any of them returned, as text.
    /// The statements after a failing one are not run.
    pub(crate) fn simple(&self, sql: &str) -> sql::Result<Option<String>> {
        let messages = self.handle.block_on(self.client.simple_query(sql))?;
        Ok(messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        }))
    }

    /// `sql` prepared on this connection (once: the pool's statement cache keeps it).
    fn statement(&self, sql: &str) -> sql::Result<tokio_postgres::Statement> {
        Ok(self
            .handle
            .block_on(self.client.prepare_cached(&numbered(sql)))?)
    }
}

impl Db for PgDb {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn run(&self, sql: &str, args: &[Arg<'_>]) -> sql::Result<usize> {
        let stmt = self.statement(sql)?;
        let changed = self
            .handle
            .block_on(self.client.execute(&stmt, &params(args)))?;
        Ok(changed as usize)
    }

    fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: &mut dyn FnMut(&dyn Row) -> sql::Result<()>,
    ) -> sql::Result<()> {
        let stmt = self.statement(sql)?;
        for row in self
            .handle
            .block_on(self.client.query(&stmt, &params(args)))?
        {
            f(&PgRow(&row))?;
        }
        Ok(())
    }

    fn batch(&self, sql: &str) -> sql::Result<()> {
        self.handle
            .block_on(self.client.batch_execute(sql))
            .map_err(sql::Error::from)
    }
}

fn params<'a>(args: &'a [Arg<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as _).collect()
}

struct PgRow<'a>(&'a tokio_postgres::Row);

impl Row for PgRow<'_> {
    fn value(&self, i: usize) -> sql::Result<Value<'_>> {
        Ok(self.0.try_get::<_, Value<'_>>(i)?)
    }
}

/// Encodes the dynamic value as the type PostgreSQL inferred for the parameter: an integer
/// fills an `int8`, `int4`, `int2` or `bool` parameter (checked for range), text a textual
/// one, bytes a `bytea`.
impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().as_str().to_sql(ty, out),
                _ => Err(format!("an integer cannot be sent as {ty}").into()),
            },
            Arg::Real(r) => match *ty {
                Type::FLOAT8 => r.to_sql(ty, out),
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                _ => Err(format!("a real number cannot be sent as {ty}").into()),
            },
            Arg::Text(t) => match *ty {
                Type::BYTEA => t.as_bytes().to_sql(ty, out),
                _ => t.as_ref().to_sql(ty, out),
            },
            Arg::Blob(b) => match *ty {
                Type::BYTEA => b.as_ref().to_sql(ty, out),
                _ => Err(format!("bytes cannot be sent as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Decodes a column of any type Herald's statements produce into SQLite's dynamic types.
impl<'a> FromSql<'a> for Value<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value<'a>, BoxError> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => Value::Blob(<&[u8]>::from_sql(ty, raw)?),
            _ => Value::Text(std::str::from_utf8(raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value<'a>, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A `numeric` in PostgreSQL's binary form (what `SUM` of `bigint`s returns): base-10000
/// digits with a weight. Integral values become integers, others reals.
fn numeric(raw: &[u8]) -> Result<Value<'static>, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    if sign == 0xC000 {
        return Err("NaN is not a number Herald reads".into());
    }
    let mut int: i128 = 0;
    let mut real: f64 = 0.0;
    let mut integral = true;
    for i in 0..ndigits {
        let digit = i128::from(word(4 + i)?);
        let power = weight - i as i32;
        real += digit as f64 * 10_000f64.powi(power);
        if power >= 0 {
            int = 10_000i128
                .checked_pow(power as u32)
                .and_then(|p| digit.checked_mul(p))
                .and_then(|v| int.checked_add(v))
                .ok_or("numeric too large")?;
        } else if digit != 0 {
            integral = false;
        }
    }
    let negative = sign == 0x4000;
    if integral {
        let v = i64::try_from(if negative { -int } else { int })?;
        Ok(Value::Int(v))
    } else {
        Ok(Value::Real(if negative { -real } else { real }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(digits: &[u16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
        let mut raw = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, dscale] {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_decode_to_integers_when_integral() {
        // 123456789 = 1·10000² + 2345·10000 + 6789
        let v = numeric(&encode(&[1, 2345, 6789], 2, 0, 0)).unwrap();
        assert!(matches!(v, Value::Int(123_456_789)), "{v:?}");
        let v = numeric(&encode(&[42], 0, 0x4000, 0)).unwrap();
        assert!(matches!(v, Value::Int(-42)), "{v:?}");
        // 20000 = 2·10000¹ (trailing zero digits are not sent)
        let v = numeric(&encode(&[2], 1, 0, 0)).unwrap();
        assert!(matches!(v, Value::Int(20_000)), "{v:?}");
        let v = numeric(&encode(&[], 0, 0, 0)).unwrap();
        assert!(matches!(v, Value::Int(0)), "{v:?}");
        // 1.5 = 1 + 5000·10000⁻¹
        let v = numeric(&encode(&[1, 5000], 0, 0, 1)).unwrap();
        assert!(
            matches!(v, Value::Real(r) if (r - 1.5).abs() < 1e-9),
            "{v:?}"
        );
        assert!(numeric(&encode(&[], 0, 0xC000, 0)).is_err());
        assert!(numeric(&[0, 1]).is_err(), "truncated");
    }
}
