/**
 * The two container deploy paths agree with each other and with the code (issue 15, item 1):
 * docker-compose.yml and deploy/k8s/ (the files kustomization.yaml lists, and `kubectl kustomize`'s
 * output where kubectl is installed) run every long-running role with its metrics port; the fatigue
 * processor's stop grace covers its own shutdown bound and its scaling never passes the partition
 * count; the KEDA triggers name the consumer groups the runners really use.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { Lifecycle } from '../core/lifecycle';
import { createLogger } from '../core/logger';
import { POSTGRES_GROUP } from '../projections/runner';
import { REDIS_PROJECTION } from '../projections/redis/runner';
import { fatigueProcessor } from '../processors/fatigue/keyed-processor';

const root = path.join(__dirname, '..');
const read = (p: string) => fs.readFileSync(path.join(root, p), 'utf8');

/** Every long-running role: its `vigil` command, which is also the k8s component and Deployment suffix. */
const ROLES = ['process', 'project', 'api', 'jobs', 'gateway'] as const;
const HTTP_ROLES: Record<string, number> = { api: 8080, gateway: 8090 };
const METRICS_PORT = 9464;
/**
 * Budget per partition for the processor's stop (one last transaction commit and one producer close,
 * one partition after another): a replica alone owns all the partitions.
 */
const PER_PARTITION_STOP_S = 2;
/** Slack above the process's own shutdown bound (signal delivery, a late timer). */
const MARGIN_S = 5;

/* eslint-disable @typescript-eslint/no-explicit-any -- parsed YAML is walked as plain data */
type Doc = Record<string, any>;

/** "60s", "1m30s", "500ms" → seconds. */
function seconds(duration: string): number {
  let total = 0;
  for (const m of duration.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  }
  return total;
}

/** `${VAR:-default}` → default (what compose uses with the variable unset). */
const withDefaults = (text: string) => text.replace(/\$\{\w+:-([^}]*)\}/g, '$1');

/** The process's own bound on its shutdown (core/lifecycle.ts), in seconds. */
function lifecycleBoundS(): number {
  const lifecycle = new Lifecycle(createLogger({ level: 'silent', role: 'spec' }));
  return (lifecycle as unknown as { graceMs: number }).graceMs / 1000;
}

describe('docker-compose.yml', () => {
  const compose = parse(withDefaults(read('docker-compose.yml')), { merge: true, maxAliasCount: -1 }) as Doc;
  const services = compose.services as Record<string, Doc>;
  const byRole = (role: string) =>
    Object.entries(services).find(([, s]) => Array.isArray(s.command) && s.command[0] === role);
  const prometheus = parse(read('deploy/compose/prometheus.yml')) as Doc;

  it.each(ROLES)('runs the %s role, restarted, serving /metrics on 0.0.0.0:9464, scraped by Prometheus', (role) => {
    const found = byRole(role);
    expect(found).toBeDefined();
    const [name, s] = found!;
    expect(s.profiles).toBeUndefined();
    expect(s.restart).toBe('unless-stopped');
    expect(s.environment.VIGIL_METRICS_HOST).toBe('0.0.0.0');
    expect(Number(s.environment.VIGIL_METRICS_PORT)).toBe(METRICS_PORT);
    expect(s.healthcheck?.disable).not.toBe(true);
    const job = (prometheus.scrape_configs as Doc[]).find((j) => j.job_name === name);
    expect(job?.dns_sd_configs?.[0]).toMatchObject({ names: [name], port: METRICS_PORT });
    if (HTTP_ROLES[role]) {
      expect(s.ports.some((p: string) => p.endsWith(`:${HTTP_ROLES[role]}:${HTTP_ROLES[role]}`))).toBe(true);
      expect(JSON.stringify(s.healthcheck.test)).toContain('/health/ready');
    } else {
      expect(JSON.stringify(s.healthcheck.test)).toContain('/metrics');
    }
  });

  it('runs the simulator only under a profile', () => {
    const [, sim] = byRole('simulate')!;
    expect(sim.profiles).toEqual(['demo']);
    expect(sim.restart).toBe('no');
  });

  it('gives the processor a stop grace above its own shutdown bound and replicas within the partitions', () => {
    const [, p] = byRole('process')!;
    const partitions = Number(p.environment.VIGIL_TOPIC_PARTITIONS);
    const grace = seconds(p.stop_grace_period);
    expect(grace).toBeGreaterThanOrEqual(lifecycleBoundS() + MARGIN_S);
    expect(grace).toBeGreaterThanOrEqual(partitions * PER_PARTITION_STOP_S);
    expect(Number(p.deploy.replicas)).toBeGreaterThanOrEqual(1);
    expect(Number(p.deploy.replicas)).toBeLessThanOrEqual(partitions);
  });

  it('has the infrastructure, a collector with traces and metrics pipelines, Prometheus and Grafana', () => {
    for (const s of ['kafka', 'schema-registry', 'timescaledb', 'redis', 'otel-collector', 'prometheus', 'grafana']) {
      expect(services[s]).toBeDefined();
    }
    const collector = parse(read('deploy/compose/otel-collector.yaml')) as Doc;
    expect(Object.keys(collector.service.pipelines).sort()).toEqual(['metrics', 'traces']);
    expect(collector.service.pipelines.metrics.exporters).toContain('prometheus');
    expect(prometheus.rule_files).toEqual(['/etc/prometheus/rules/*.yml']);
    const mounts = (services.prometheus!.volumes as string[]).join('\n');
    expect(mounts).toContain('./deploy/prometheus/rules:/etc/prometheus/rules');
    expect((services.grafana!.volumes as string[]).join('\n')).toContain('./deploy/grafana/dashboards:');
  });
});

describe('deploy/k8s', () => {
  const kustomization = parse(read('deploy/k8s/kustomization.yaml')) as Doc;
  const docs: Doc[] = (kustomization.resources as string[]).flatMap((f) =>
    parseAllDocuments(read(path.join('deploy/k8s', f)))
      .map((d) => d.toJS() as Doc | null)
      .filter((d): d is Doc => d !== null),
  );
  const find = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name);
  const config = find('ConfigMap', 'vigil-config')!.data as Record<string, string>;
  const partitions = Number(config.VIGIL_TOPIC_PARTITIONS);
  const prefix = config.VIGIL_TOPIC_PREFIX!;

  it('serves metrics on 0.0.0.0:9464 in every role (vigil-config)', () => {
    expect(config.VIGIL_METRICS_HOST).toBe('0.0.0.0');
    expect(Number(config.VIGIL_METRICS_PORT)).toBe(METRICS_PORT);
  });

  it.each(ROLES)('runs the %s role: Deployment, metrics port, probes, Service, PDB, ServiceMonitor', (role) => {
    const name = `vigil-${role}`;
    const deployment = find('Deployment', name);
    expect(deployment).toBeDefined();
    const pod = deployment!.spec.template.spec;
    const [container] = pod.containers as Doc[];
    expect(container!.args[0]).toBe(role);
    expect(container!.envFrom).toEqual(
      expect.arrayContaining([
        { configMapRef: { name: 'vigil-config' } },
        { secretRef: { name: 'vigil-connections' } },
      ]),
    );
    expect(container!.ports).toContainEqual(expect.objectContaining({ name: 'metrics', containerPort: METRICS_PORT }));
    expect(container!.resources.requests).toBeDefined();
    expect(container!.resources.limits.memory).toBeDefined();
    const probePath = HTTP_ROLES[role] ? '/health/ready' : '/metrics';
    expect(container!.readinessProbe.httpGet.path).toBe(probePath);
    expect(container!.livenessProbe.httpGet.path).toBe(HTTP_ROLES[role] ? '/health/live' : '/metrics');
    if (HTTP_ROLES[role]) {
      expect(container!.ports).toContainEqual(
        expect.objectContaining({ name: 'http', containerPort: HTTP_ROLES[role] }),
      );
    }
    const selector = deployment!.spec.selector.matchLabels;
    const service = find('Service', name);
    expect(service?.spec.selector).toEqual(selector);
    expect(service?.spec.ports).toContainEqual(expect.objectContaining({ name: 'metrics', port: METRICS_PORT }));
    expect(find('PodDisruptionBudget', name)?.spec.selector.matchLabels).toEqual(selector);
    const monitor = find('ServiceMonitor', name);
    expect(monitor?.spec.selector.matchLabels).toEqual(selector);
    expect(monitor?.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
  });

  it('scales the processor on its consumer group, at most one replica per partition', () => {
    const scaled = find('ScaledObject', 'vigil-process')!;
    expect(scaled.spec.scaleTargetRef.name).toBe('vigil-process');
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(scaled.spec.maxReplicaCount).toBeLessThanOrEqual(partitions);
    expect(scaled.spec.triggers.map((t: Doc) => [t.type, t.metadata.consumerGroup])).toEqual([
      ['kafka', `${prefix}.processor.${fatigueProcessor.name}`],
    ]);
    // KEDA owns the replica count; a `replicas` in the Deployment would be reset by every apply.
    expect(find('Deployment', 'vigil-process')!.spec.replicas).toBeUndefined();
  });

  it('scales the projection worker on every projection consumer group, at most one replica per partition', () => {
    const scaled = find('ScaledObject', 'vigil-project')!;
    expect(scaled.spec.maxReplicaCount).toBeLessThanOrEqual(partitions);
    const groups = scaled.spec.triggers.map((t: Doc) => t.metadata.consumerGroup as string).sort();
    const models = [POSTGRES_GROUP, REDIS_PROJECTION].map((m) => `${prefix}.projection.${m}`).sort();
    expect(groups).toEqual(models);
    expect(find('Deployment', 'vigil-project')!.spec.replicas).toBeUndefined();
  });

  it("gives the processor a grace period above its own shutdown bound and its partitions' final commits", () => {
    const grace = find('Deployment', 'vigil-process')!.spec.template.spec.terminationGracePeriodSeconds as number;
    expect(grace).toBeGreaterThanOrEqual(lifecycleBoundS() + MARGIN_S);
    expect(grace).toBeGreaterThanOrEqual(partitions * PER_PARTITION_STOP_S);
    const compose = parse(withDefaults(read('docker-compose.yml')), { merge: true, maxAliasCount: -1 }) as Doc;
    expect(seconds(compose.services['vigil-process'].stop_grace_period)).toBe(grace);
  });

  it('validates against the Kubernetes, KEDA and Prometheus Operator schemas (deploy/k8s/validate.mjs)', () => {
    const manifests = [
      ...(kustomization.resources as string[]).map((f) => read(path.join('deploy/k8s', f))),
      read('deploy/k8s/secret.example.yaml'),
    ].join('\n---\n');
    const run = spawnSync(process.execPath, [path.join(root, 'deploy/k8s/validate.mjs')], {
      input: manifests,
      encoding: 'utf8',
    });
    expect(run.stdout).toMatch(new RegExp(`^${docs.length + 1} valid, 0 invalid$`, 'm'));
    expect(run.status).toBe(0);
  });

  const kubectl = spawnSync('kubectl', ['kustomize', path.join(root, 'deploy/k8s')], { encoding: 'utf8' });
  (kubectl.status === 0 ? it : it.skip)(
    'renders with kubectl kustomize into the same objects, in namespace vigil',
    () => {
      const rendered = parseAllDocuments(kubectl.stdout).map((d) => d.toJS() as Doc);
      const names = (list: Doc[]) => list.map((d) => `${d.kind}/${d.metadata.name}`).sort();
      expect(names(rendered)).toEqual(names(docs));
      for (const d of rendered) if (d.kind !== 'Namespace') expect(d.metadata.namespace).toBe('vigil');
    },
  );
});
