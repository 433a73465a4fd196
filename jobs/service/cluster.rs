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
    /// Seconds a job may run before the scheduler cancels it (0: no limit).
    /// Ballista 55 can leave a job running with nothing left to do after an
    /// executor dies; the cancel fails that night's query, and the night is
    /// retried like any failure instead of waiting forever.
    pub job_timeout_secs: u64,
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
    if opts.job_timeout_secs > 0 {
        let limit = std::time::Duration::from_secs(opts.job_timeout_secs);
        tokio::spawn(cancel_overdue_jobs(
            cluster.job_state(),
            own_url(addr),
            limit,
        ));
    }
    start_server(cluster, addr, Arc::new(config))
        .await
        .map_err(|e| Error::CannotRun(format!("scheduler: {e}")))
}

/// Every few seconds, cancels the jobs that have been running for longer
/// than `limit`, through the scheduler's own gRPC service (the way a client
/// cancels), so their tasks are stopped and their clients see them fail.
async fn cancel_overdue_jobs(
    jobs: Arc<dyn ballista_scheduler::cluster::JobState>,
    url: String,
    limit: std::time::Duration,
) {
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    let mut cancelled = std::collections::HashSet::new();
    let mut tick = tokio::time::interval(watch_interval(limit));
    loop {
        tick.tick().await;
        for job in overdue(jobs.as_ref(), limit).await {
            if cancelled.contains(&job) {
                continue;
            }
            // Logged first: the job's client may read the cancel before
            // the answer comes back here.
            tracing::warn!(job = %job, limit_secs = limit.as_secs(),
                "cancelling a job that ran past --job-timeout-secs");
            let params = ballista_core::serde::protobuf::CancelJobParams {
                job_id: job.clone(),
            };
            let answer = match SchedulerGrpcClient::connect(url.clone()).await {
                Ok(mut client) => client
                    .cancel_job(params)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match answer {
                Ok(()) => {
                    cancelled.insert(job);
                }
                Err(e) => tracing::warn!(job = %job, error = %e, "could not cancel an overdue job"),
            }
        }
    }
}

/// How often overdue jobs are looked for: a tenth of the limit, 1 to 30 s.
fn watch_interval(limit: std::time::Duration) -> std::time::Duration {
    (limit / 10).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(30),
    )
}

/// The ids of the jobs running for longer than `limit`.
async fn overdue(
    jobs: &dyn ballista_scheduler::cluster::JobState,
    limit: std::time::Duration,
) -> Vec<String> {
    use ballista_core::serde::protobuf::job_status::Status;
    let now = ballista_core::utils::get_current_time() as u64;
    let mut out = vec![];
    for id in jobs.get_all_jobs().await.unwrap_or_default() {
        if let Ok(Some(status)) = jobs.get_job_status(&id).await {
            if let Some(Status::Running(r)) = status.status {
                if started_too_long_ago(r.started_at, now, limit) {
                    out.push(id.to_string());
                }
            }
        }
    }
    out.sort();
    out
}

/// Whether a job started at `started_ms` (Unix milliseconds) has run for
/// longer than `limit` at `now_ms`.
fn started_too_long_ago(started_ms: u64, now_ms: u64, limit: std::time::Duration) -> bool {
    now_ms.saturating_sub(started_ms) > limit.as_millis() as u64
}

/// The scheduler's gRPC URL as seen from its own process.
fn own_url(addr: std::net::SocketAddr) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_job_is_overdue_only_past_its_limit() {
        let limit = Duration::from_secs(60);
        assert!(!started_too_long_ago(1_000, 61_000, limit));
        assert!(started_too_long_ago(1_000, 61_001, limit));
        // A clock behind the job's start is not a reason to cancel it.
        assert!(!started_too_long_ago(61_001, 1_000, limit));
    }

    #[test]
    fn the_watch_looks_often_enough_for_short_and_long_limits() {
        assert_eq!(
            watch_interval(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(
            watch_interval(Duration::from_secs(100)),
            Duration::from_secs(10)
        );
        assert_eq!(
            watch_interval(Duration::from_secs(3600)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn a_scheduler_bound_to_every_interface_is_reached_on_loopback() {
        let own = |a: &str| own_url(a.parse().unwrap());
        assert_eq!(own("0.0.0.0:50050"), "http://127.0.0.1:50050");
        assert_eq!(own("[::]:50050"), "http://[::1]:50050");
        assert_eq!(own("10.1.2.3:50050"), "http://10.1.2.3:50050");
    }
}
