//! Work tables held in memory: a query's rows collected, partition by
//! partition, into a table the rest of the run reads, with the memory they
//! take reserved in the session's pool for as long as the table lives (so
//! the joins that follow see that much less pool, as they would see a hash
//! table). The one-machine alternative to writing a small work table as
//! Parquet and decoding it again. Must never hold a table whose rows do not
//! fit the pool (a reservation that fails stops the collection with the
//! engine's resources-exhausted error), and never be used on a cluster,
//! whose executors read work tables from the store.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::DataFrame;
use futures::StreamExt;

/// A table of rows held in memory, with their reservation in the pool.
#[derive(Debug)]
pub struct HeldTable {
    rows: MemTable,
    /// Released when the table is dropped (deregistered, or the session ends).
    reservation: MemoryReservation,
}

impl HeldTable {
    /// Runs `df` and holds its rows, one partition of the table per
    /// partition of the plan (so a later scan is as parallel as the query
    /// was). `name` names the reservation in an out-of-memory error.
    pub async fn collect(name: &str, df: DataFrame) -> Result<HeldTable> {
        let task = Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await?;
        let schema = plan.schema();
        let reservation = Arc::new(
            MemoryConsumer::new(format!("work table {name}")).register(task.memory_pool()),
        );
        let partitions = plan.output_partitioning().partition_count();
        let mut running = tokio::task::JoinSet::new();
        for partition in 0..partitions {
            let stream = plan.execute(partition, task.clone())?;
            let reservation = reservation.clone();
            running.spawn(async move {
                let mut stream = stream;
                let mut batches: Vec<RecordBatch> = vec![];
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    reservation.try_grow(batch.get_array_memory_size())?;
                    batches.push(batch);
                }
                Ok::<_, datafusion::error::DataFusionError>((partition, batches))
            });
        }
        let mut parts = vec![vec![]; partitions];
        while let Some(joined) = running.join_next().await {
            let (partition, batches) = joined.map_err(|e| {
                datafusion::error::DataFusionError::Execution(format!("{name}: {e}"))
            })??;
            parts[partition] = batches;
        }
        drop(running);
        let reservation = Arc::try_unwrap(reservation)
            .expect("every partition's task has ended and let go of the reservation");
        Ok(HeldTable {
            rows: MemTable::try_new(schema, parts)?,
            reservation,
        })
    }

    /// Bytes the rows take (as reserved).
    pub fn bytes(&self) -> usize {
        self.reservation.size()
    }
}

#[async_trait]
impl TableProvider for HeldTable {
    fn schema(&self) -> SchemaRef {
        self.rows.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.rows.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.rows.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.rows.statistics()
    }
}
