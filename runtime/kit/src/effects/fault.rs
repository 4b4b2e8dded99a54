//! Fault points: where a scenario injects the fault it was asked to (`--inject`), to
//! show that its verifier catches it. Faults that belong to another effect
//! (`skip-wal-replay` and `corrupt-restored-table` in [`Restore`](super::Restore),
//! `weaker-isolation` in the isolation cases) are injected there.

use stormchor_macros::ExtensionEffect;
use stormchor_postgres::{LEDGER_TABLE, Ledger, StopMode, quote_ident};
use stormchor_runtime::EffectFailure;

use super::server::ServerInfo;
use super::{connect, failed};
use crate::effect::DbEffect;
use crate::journal::EventKind;
use crate::node::Node;
use crate::scenario::Fault;
use crate::value::Slot;

/// Injects `fault` here if the run injects it; otherwise does nothing.
///
/// - `delete-acknowledged-row`: deletes one row of the first acknowledged transaction
///   of the ledgers this role received in `ledgers`, on the server in `on`;
/// - `drop-table-behind-catalog`: drops a table of this role's catalog without telling
///   the catalog;
/// - `corrupt-ledger-index`: this role's own server is stopped, a page of the ledger's
///   primary-key index overwritten, and the server started again.
///
/// # Example
/// ```
/// use stormchor_kit::effects::FaultPoint;
/// use stormchor_kit::slots::{LEDGER, PRIMARY};
/// use stormchor_kit::Fault;
///
/// // Does nothing unless the run injects this fault (`--inject delete-acknowledged-row`):
/// // then the verifier after it must fail.
/// let fault = FaultPoint { fault: Fault::DeleteAcknowledgedRow, on: PRIMARY, ledgers: LEDGER };
/// assert_eq!(fault.fault, Fault::DeleteAcknowledgedRow);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct FaultPoint {
    /// The fault.
    pub fault: Fault,
    /// The server to work on.
    pub on: Slot<ServerInfo>,
    /// Where the writers' ledgers are (`delete-acknowledged-row`).
    pub ledgers: Slot<Ledger>,
}

impl DbEffect for FaultPoint {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        if !node.injects(self.fault) {
            return Ok(());
        }
        let server = node.value(self.on)?;
        let client = connect(&server.connection).await?;
        node.journal()
            .event(EventKind::Fault, format!("injecting {}", self.fault));
        match self.fault {
            Fault::DeleteAcknowledgedRow => {
                let victim = super::verify::gathered_ledgers(node, self.ledgers)?
                    .into_iter()
                    .find_map(|ledger| ledger.acknowledged.first().map(|tx| (ledger.worker, *tx)));
                let Some((worker, tx)) = victim else {
                    return Err(EffectFailure::permanent(
                        "fault: no acknowledged transaction to delete a row of",
                    ));
                };
                client
                    .execute(
                        &format!(
                            "DELETE FROM {LEDGER_TABLE} WHERE worker = $1 AND tx = $2 AND item = 0"
                        ),
                        &[&worker, &tx],
                    )
                    .await
                    .map_err(failed)?;
                println!(
                    "fault injected: deleted row 0 of worker {worker}'s acknowledged transaction {tx}"
                );
            }
            Fault::DropTableBehindCatalog => {
                let table = node
                    .catalog()
                    .snapshot()
                    .values()
                    .map(|t| t.name.clone())
                    .find(|name| name != LEDGER_TABLE)
                    .ok_or_else(|| EffectFailure::permanent("fault: no table to drop"))?;
                client
                    .batch_execute(&format!("DROP TABLE {} CASCADE", quote_ident(&table)))
                    .await
                    .map_err(failed)?;
                println!("fault injected: dropped table {table} behind the catalog's back");
            }
            Fault::CorruptLedgerIndex => {
                let file: String = client
                    .query_one(
                        &format!("SELECT pg_relation_filepath('{LEDGER_TABLE}_pkey')"),
                        &[],
                    )
                    .await
                    .map_err(failed)?
                    .get(0);
                drop(client);
                let mut server = node.server.lock().await;
                let cluster = server
                    .as_mut()
                    .ok_or_else(|| {
                        EffectFailure::permanent(format!("{} runs no server", node.role()))
                    })?
                    .cluster("corrupt an index file")
                    .map_err(failed)?;
                cluster.stop(StopMode::Fast).await.map_err(failed)?;
                let path = cluster.data_dir().join(&file);
                overwrite_line_pointers(&path)
                    .await
                    .map_err(|e| failed(format!("cannot corrupt {}: {e}", path.display())))?;
                cluster.restart().await.map_err(failed)?;
                println!(
                    "fault injected: overwrote the line pointers of a page of {LEDGER_TABLE}_pkey"
                );
            }
            // Injected by the effects they belong to.
            Fault::CorruptRestoredTable | Fault::SkipWalReplay | Fault::WeakerIsolation => {}
        }
        Ok(())
    }
}

/// Overwrites the line pointers of the last page of a relation file (past the 24-byte
/// page header, which stays valid). Without data checksums the damage is found by
/// checking the index's structure; with them, the page's checksum no longer matches
/// and reading it fails (`invalid page in block`), which `pg_amcheck` reports too.
async fn overwrite_line_pointers(path: &std::path::Path) -> std::io::Result<()> {
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    const PAGE: u64 = 8192;
    let mut file = tokio::fs::OpenOptions::new().write(true).open(path).await?;
    let pages = file.metadata().await?.len() / PAGE;
    if pages < 2 {
        return Err(std::io::Error::other(
            "the index has no page besides its metapage",
        ));
    }
    file.seek(std::io::SeekFrom::Start((pages - 1) * PAGE + 24))
        .await?;
    file.write_all(&[0xA5; 64]).await?;
    file.sync_all().await
}
