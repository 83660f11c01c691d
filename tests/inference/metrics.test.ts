import { createInferenceMetrics, createMetricsRegistry, renderMetrics } from '../../inference/metrics.js';

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
});
