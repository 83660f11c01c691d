import { createClusterMetrics, createInferenceMetrics, createMetricsRegistry, renderMetrics } from '../../inference/metrics.js';

describe('inference metrics', () => {
  it('exposes queue depth, running, wait and run histograms, batch sizes, jobs by outcome and failures by code', async () => {
    const registry = createMetricsRegistry();
    const metrics = createInferenceMetrics(registry);
    metrics.setQueueDepth('imagine', 4);
    metrics.setRunning('caption', 2);
    metrics.observeWait('imagine', 0.2);
    metrics.observeRun('imagine', 3);
    metrics.observeBatch('caption', 5);
    metrics.observeUnetRun(3);
    metrics.observeRank(3, 0.02);
    metrics.countJob('imagine', 'success');
    metrics.countJob('imagine', 'timeout', 'job.timeout');
    metrics.countJob('speak', 'rejected', 'queue.busy');

    const { contentType, body } = await renderMetrics(registry);
    expect(contentType).toMatch(/^text\/plain/);
    expect(body).toContain('pictalk_queue_depth{kind="imagine"} 4');
    expect(body).toContain('pictalk_jobs_running{kind="caption"} 2');
    expect(body).toContain('pictalk_job_wait_seconds_bucket{le="0.25",kind="imagine"} 1');
    expect(body).toContain('pictalk_job_wait_seconds_bucket{le="0.1",kind="imagine"} 0');
    expect(body).toContain('pictalk_job_run_seconds_sum{kind="imagine"} 3');
    expect(body).toContain('pictalk_batch_size_sum{kind="caption"} 5');
    expect(body).toContain('pictalk_unet_run_requests_bucket{le="2"} 0');
    expect(body).toContain('pictalk_unet_run_requests_bucket{le="4"} 1');
    expect(body).toContain('pictalk_rank_seconds_sum 0.02');
    expect(body).toContain('pictalk_rank_pictures_total 3');
    expect(body).toContain('pictalk_jobs_total{kind="imagine",outcome="success"} 1');
    expect(body).toContain('pictalk_jobs_total{kind="imagine",outcome="timeout"} 1');
    expect(body).toContain('pictalk_job_failures_total{kind="imagine",code="job.timeout"} 1');
    expect(body).toContain('pictalk_job_failures_total{kind="speak",code="queue.busy"} 1');
    expect(body).not.toContain('code="unknown"');
  });

  it('can be created twice on one registry: two cores share the metrics instead of failing', async () => {
    const registry = createMetricsRegistry();
    createInferenceMetrics(registry).countJob('speak', 'success');
    createInferenceMetrics(registry).countJob('speak', 'success');
    expect(registry.getMetricsAsArray()).toHaveLength(10);
    expect((await renderMetrics(registry)).body).toContain('pictalk_jobs_total{kind="speak",outcome="success"} 2');
  });

  it('adds the process metrics when asked', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: true });
    expect((await renderMetrics(registry)).body).toContain('pictalk_process_cpu_user_seconds_total');
  });

  it("exposes the cluster's queue as Redis holds it and a worker's own counters, read at scrape time", async () => {
    const registry = createMetricsRegistry();
    const counts = { started: 5, retried: 1, stalled: 2, failedStalled: 0 };
    let reads = 0;
    createClusterMetrics(registry, {
      stats: async () => {
        reads += 1;
        return { queued: { imagine: 7, caption: 0, speak: 1 }, running: { imagine: 2, caption: 1, speak: 0 } };
      },
      workerCounts: () => counts,
    });
    const first = (await renderMetrics(registry)).body;
    expect(reads).toBe(1);                                                  // one Redis read for both gauges
    expect(first).toContain('pictalk_cluster_queue_depth{kind="imagine"} 7');
    expect(first).toContain('pictalk_cluster_queue_depth{kind="speak"} 1');
    expect(first).toContain('pictalk_cluster_jobs_running{kind="caption"} 1');
    expect(first).toContain('# TYPE pictalk_worker_retries_total counter');
    expect(first).toContain('pictalk_worker_jobs_started_total 5');
    expect(first).toContain('pictalk_worker_retries_total 1');
    expect(first).toContain('pictalk_worker_stalled_total 2');
    expect(first).toContain('pictalk_worker_stalled_failed_total 0');
    counts.started = 9;
    counts.stalled = 3;
    const second = (await renderMetrics(registry)).body;
    expect(second).toContain('pictalk_worker_jobs_started_total 9');
    expect(second).toContain('pictalk_worker_stalled_total 3');
  });

  it('leaves the cluster gauges out of a scrape when Redis does not answer, instead of failing it', async () => {
    const registry = createMetricsRegistry();
    createClusterMetrics(registry, { stats: async () => { throw new Error('connect ECONNREFUSED'); } });
    const { body } = await renderMetrics(registry);
    expect(body).toContain('# TYPE pictalk_cluster_queue_depth gauge');
    expect(body).not.toMatch(/pictalk_cluster_queue_depth\{kind="imagine"\} \d/);
    expect(body).not.toContain('pictalk_worker_retries_total');           // not a worker
  });
});
