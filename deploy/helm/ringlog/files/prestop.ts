/**
 * The preStop hook of graceful leave. A pod that its StatefulSet is scaling away leaves the ring
 * (`ringlog leave` moves its vnodes to the remaining nodes) before it stops. On a restart, a
 * rolling update or a drain the pod comes back with its volume, so it does nothing. Whatever it
 * cannot find out counts as "coming back": a wrong leave moves every vnode the node owns, while a
 * missed one only leaves them to the other replicas, as a crash would.
 */
// A module (for type-checking: it awaits at the top level) that exports nothing.
export {};

const env = process.env;
const accountDir = env.SERVICEACCOUNT_DIR ?? "/var/run/secrets/kubernetes.io/serviceaccount";
const statefulSet = env.STATEFULSET_NAME ?? "";
const pod = env.POD_NAME ?? "";

function say(message: string): void {
  process.stderr.write(`ringlog preStop (${pod}): ${message}\n`);
}

async function desiredReplicas(): Promise<number> {
  const host = env.KUBERNETES_SERVICE_HOST ?? "";
  const api = `https://${host.includes(":") ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? "443"}`;
  const token = (await Bun.file(`${accountDir}/token`).text()).trim();
  const res = await fetch(`${api}/apis/apps/v1/namespaces/${env.POD_NAMESPACE}/statefulsets/${statefulSet}`, {
    headers: { authorization: `Bearer ${token}` },
    tls: { ca: Bun.file(`${accountDir}/ca.crt`) },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`reading the StatefulSet answered ${res.status}`);
  const replicas = ((await res.json()) as { spec?: { replicas?: unknown } }).spec?.replicas;
  if (typeof replicas !== "number") throw new Error("the StatefulSet has no spec.replicas");
  return replicas;
}

const ordinal = pod.startsWith(`${statefulSet}-`) ? Number(pod.slice(statefulSet.length + 1)) : NaN;
if (!Number.isInteger(ordinal)) {
  say(`not a pod of StatefulSet ${statefulSet}; staying in the ring`);
  process.exit(0);
}
const replicas = await desiredReplicas().catch((err: Error) => {
  say(`${err.message}; staying in the ring`);
  return Infinity;
});
if (ordinal < replicas) {
  if (replicas !== Infinity) say(`pod ${ordinal} of ${replicas} stays; staying in the ring`);
  process.exit(0);
}
say(`the StatefulSet is scaled to ${replicas}; leaving the ring`);
const url = `http://127.0.0.1:${env.RINGLOG_PORT ?? "8087"}`;
const ringlog = (...args: string[]) => Bun.spawn([process.execPath, "src/cli.ts", "--url", url, ...args], { stdout: "inherit", stderr: "inherit" }).exited;
// Stage and commit this node's leave, then wait until its vnodes have moved (the flip).
const left = await ringlog("leave", "--commit");
if (left !== 0) process.exit(left);
process.exit(await ringlog("status", "--watch", "--timeout", env.LEAVE_TIMEOUT_SECONDS ?? "540"));
