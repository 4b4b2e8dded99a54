//! Bulk loading with `COPY ... FROM STDIN`.

use stormchor_postgres::SqlError;
use tokio_postgres::Client;

use crate::WorkloadError;

/// Bulk-loads `lines` (COPY text rows, each ending in a newline) into `table`, in
/// chunks of about 1 MiB.
pub(crate) async fn copy_lines(
    client: &Client,
    workload: &str,
    table: &str,
    lines: impl Iterator<Item = String>,
) -> Result<(), WorkloadError> {
    use futures::SinkExt;
    let fail = |what: String| {
        let workload = workload.to_owned();
        move |error: tokio_postgres::Error| WorkloadError::Sql {
            workload,
            what,
            error: SqlError::from(error),
        }
    };
    let sink = client
        .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN"))
        .await
        .map_err(fail(format!("starting COPY into {table}")))?;
    let mut sink = Box::pin(sink);
    let mut chunk = String::with_capacity(1 << 20);
    for line in lines {
        chunk.push_str(&line);
        if chunk.len() >= 1 << 20 {
            sink.send(bytes::Bytes::from(std::mem::take(&mut chunk)))
                .await
                .map_err(fail(format!("loading {table}")))?;
        }
    }
    if !chunk.is_empty() {
        sink.send(bytes::Bytes::from(chunk))
            .await
            .map_err(fail(format!("loading {table}")))?;
    }
    sink.as_mut()
        .finish()
        .await
        .map_err(fail(format!("finishing COPY into {table}")))?;
    Ok(())
}
