//! `junkrecon scheduler` and `junkrecon executor`: Apache Ballista's
//! scheduler and executor processes, embedded so that they know junkrecon's
//! store. Both are given the root the night runs on (`--data`, S3 settings
//! from `[s3]` and the AWS variables) and register it under the URL the
//! night's plans read and write (`junkrecon://root/`), behind the same guard
//! that refuses every change under `landing/`. They run SQL plans only: they
//! never ingest, never publish, and never hold the lease (the coordinating
//! `junkrecon run` or `serve` does).

use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::SessionConfig;

use crate::store::{Root, DATAFUSION_URL};
use crate::{Error, Result};

/// Where a scheduler listens.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to bind (`0.0.0.0` for every interface).
    pub bind: String,
    /// gRPC port executors and `junkrecon run` connect to.
    pub port: u16,
    /// Host name the scheduler tells others to reach it at.
    pub external_host: String,
    /// Seconds without a heartbeat after which an executor is dead and its
    /// tasks are run elsewhere.
    pub executor_timeout_secs: u64,
}

/// How an executor joins its scheduler.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `HOST:PORT`.
    pub scheduler: String,
    /// Address to bind.
    pub bind: String,
    /// Host name other executors and the coordinator fetch results from.
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle and results).
    pub port: u16,
    /// gRPC port (tasks from the scheduler).
    pub grpc_port: u16,
    /// Folder for shuffle files and spills (`None`: a temporary folder).
    pub work_dir: Option<String>,
    /// Tasks run at once (0: the number of cores).
    pub concurrent_tasks: usize,
    /// Memory pool shared by the executor's tasks, MiB (0: unbounded).
    pub memory_limit_mb: u64,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_secs: u64,
}

/// Runs a Ballista scheduler until the process is stopped.
pub async fn scheduler(root: Root, opts: SchedulerOptions) -> Result<()> {
    let addr = socket(&opts.bind, opts.port)?;
    let store = root.store();
    let builder = move |config: SessionConfig| {
        let state = default_session_builder(config)?;
        state
            .runtime_env()
            .register_object_store(&root_url(), store.clone());
        Ok(state)
    };
    let config = SchedulerConfig {
        bind_host: opts.bind.clone(),
        bind_port: opts.port,
        external_host: opts.external_host.clone(),
        executor_timeout_seconds: opts.executor_timeout_secs,
        no_executors_grace_period_seconds: opts.executor_timeout_secs,
        expire_dead_executor_interval_seconds: (opts.executor_timeout_secs / 2).clamp(1, 15),
        ..SchedulerConfig::default()
    }
    .with_override_session_builder(Arc::new(builder));
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| Error::CannotRun(format!("scheduler: {e}")))?;
    tracing::info!(address = %addr, root = %root.display(), "Ballista scheduler listening");
    start_server(cluster, addr, Arc::new(config))
        .await
        .map_err(|e| Error::CannotRun(format!("scheduler: {e}")))
}

/// Runs a Ballista executor until the process is stopped or its scheduler
/// tells it to stop.
pub async fn executor(root: Root, opts: ExecutorOptions) -> Result<()> {
    let (host, port) = opts
        .scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| {
            Error::CannotRun(format!(
                "--scheduler {:?}: expected HOST:PORT",
                opts.scheduler
            ))
        })?;
    let store = root.store();
    let spill = opts.work_dir.clone();
    let runtime = move |_: &SessionConfig| -> datafusion::error::Result<Arc<RuntimeEnv>> {
        // Folder listings are not cached, as in the local engine (a night
        // writes into folders it has read).
        let caches = datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
            .with_list_files_cache_limit(0);
        let mut rt = RuntimeEnvBuilder::new().with_cache_manager(caches);
        if let Some(dir) = &spill {
            rt = rt.with_temp_file_path(dir);
        }
        let rt = rt.build_arc()?;
        rt.register_object_store(&root_url(), store.clone());
        Ok(rt)
    };
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        bind_host: opts.bind.clone(),
        external_host: opts.external_host.clone(),
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host: host,
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        vcores: match opts.concurrent_tasks {
            0 => defaults.vcores,
            n => n,
        },
        work_dir: opts.work_dir.clone(),
        memory_pool_size: (opts.memory_limit_mb > 0).then(|| opts.memory_limit_mb * 1024 * 1024),
        executor_heartbeat_interval_seconds: opts.heartbeat_secs.max(1),
        override_runtime_producer: Some(Arc::new(runtime)),
        // Every function a local session has (Ballista's default registry
        // lacks the nested ones, such as string_to_array).
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(
            &datafusion::execution::SessionStateBuilder::new()
                .with_default_features()
                .build(),
        ))),
        override_execution_engine: Some(Arc::new(WithoutOperatorMetrics(
            DefaultExecutionEngine::new(),
        ))),
        ..defaults
    };
    tracing::info!(scheduler = %opts.scheduler, port = opts.port, grpc_port = opts.grpc_port,
        root = %root.display(), "Ballista executor starting");
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| Error::CannotRun(format!("executor: {e}")))
}

/// Ballista's own execution engine, whose tasks report no per-operator
/// metrics. Ballista 55's scheduler refuses a task's status when the task
/// reports metrics for another number of operators than the first task of
/// its stage did, and the job then waits forever (seen at 1M persons). Tasks
/// of one stage can differ: the scheduler cuts each task's plan down to its
/// partitions, and a union input left with none loses its scan. The
/// metrics only feed Ballista's displays; a task that reports none is
/// accepted as it is. (Without Ballista's connection pool, which it does
/// not export: a remote shuffle read opens its own connection.)
struct WithoutOperatorMetrics(DefaultExecutionEngine);

impl ExecutionEngine for WithoutOperatorMetrics {
    fn create_query_stage_exec(
        &self,
        job_id: ballista_core::JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> datafusion::error::Result<Arc<dyn QueryStageExecutor>> {
        let stage = self.0.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(NoOperatorMetrics(stage)))
    }
}

/// A query stage that reports no operator metrics (see [`WithoutOperatorMetrics`]).
#[derive(Debug)]
struct NoOperatorMetrics(Arc<dyn QueryStageExecutor>);

impl std::fmt::Display for NoOperatorMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for NoOperatorMetrics {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<datafusion::execution::TaskContext>,
    ) -> datafusion::error::Result<Vec<ballista_core::serde::protobuf::ShuffleWritePartition>> {
        self.0.execute_query_stage(task_id, context).await
    }

    fn collect_plan_metrics(&self) -> Vec<datafusion::physical_plan::metrics::MetricsSet> {
        vec![]
    }

    fn collect_runtime_stats_reports(
        &self,
    ) -> Vec<ballista_core::serde::protobuf::RuntimeStatsReport> {
        self.0.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(
        &self,
    ) -> datafusion::error::Result<Vec<ballista_core::serde::protobuf::WindowStateReport>> {
        self.0.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<ballista_core::serde::protobuf::TaskColumnStats> {
        self.0.collect_column_stats()
    }
}

fn root_url() -> url::Url {
    url::Url::parse(DATAFUSION_URL).expect("constant URL")
}

fn socket(bind: &str, port: u16) -> Result<std::net::SocketAddr> {
    format!("{bind}:{port}")
        .parse()
        .map_err(|e| Error::CannotRun(format!("--bind {bind:?}: {e}")))
}
