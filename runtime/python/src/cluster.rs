//! Throwaway PostgreSQL clusters from Python, for stress runs and tests.

use pyo3::prelude::*;
use stormchor_postgres::{ClusterOptions, PgCluster, StopMode};

use crate::errors::{ClusterError, text};
use crate::rt::runtime;

/// `Cluster()`: a throwaway cluster (`initdb` in a temporary directory, a free
/// loopback port), removed by `close()`, at the end of a `with` block, or when
/// garbage-collected.
#[pyclass(name = "Cluster", module = "stormchor")]
pub(crate) struct PyCluster {
    cluster: Option<PgCluster>,
    connection: String,
}

#[pymethods]
impl PyCluster {
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        // Ctrl-C while the cluster starts reaches Python, and the half-started
        // cluster is removed.
        let cluster = crate::rt::wait(py, PgCluster::start(ClusterOptions::default()))?
            .map_err(text::<ClusterError>)?;
        let connection = cluster.connection_string();
        Ok(PyCluster {
            cluster: Some(cluster),
            connection,
        })
    }

    /// A libpq connection string to the cluster.
    #[getter]
    fn connection(&self) -> &str {
        &self.connection
    }

    /// Stops the server and removes its directory.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        let Some(mut cluster) = self.cluster.take() else {
            return Ok(());
        };
        let rt = runtime()?;
        py.allow_threads(move || {
            let stopped = rt.block_on(cluster.stop(StopMode::Fast));
            drop(cluster);
            stopped
        })
        .map_err(text::<ClusterError>)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        py: Python<'_>,
        _kind: Option<Bound<'_, PyAny>>,
        _value: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Cluster({:?})", self.connection)
    }
}
