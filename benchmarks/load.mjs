// Runs one autocannon load and prints its figures as one JSON object on stdout.
//
// It runs under node, in its own process, so the load generator never shares an event loop
// with a server under test. The config arrives as JSON on stdin (a key list can exceed the
// kernel's limit on one argument):
//   urls         base URLs; autocannon opens connections round-robin over them
//   connections  total connections
//   method       GET | PUT, to /kv/<keyPrefix><n>
//   seconds      run for this long, each request to an n uniform in [0, keyCount), unless
//   keyList      is given: then each n in it is requested once
//   maxSeconds   hard stop whatever happens, so no run can hang
//   valueBytes   PUT body size (random bytes); contentType is sent with it
//   track        report which n got a 2xx answer, as a bitmap (base64, bit n of byte n>>3)
import autocannon from "autocannon";
import { randomBytes } from "node:crypto";

// Bodies come from a pool of random values, drawn per request, so that the load tool spends
// its CPU sending rather than generating randomness: on 2 cores, every cycle it uses is taken
// from the server under test.
const VALUE_POOL = 4096;

const config = JSON.parse(await new Response(process.stdin).text());
const { urls, connections, method, keyPrefix, keyCount, keyList, valueBytes = 0, contentType = "application/octet-stream", track = false } = config;

const values = method === "PUT" ? Array.from({ length: VALUE_POOL }, () => randomBytes(valueBytes)) : [];
const written = track ? new Uint8Array(Math.ceil(keyCount / 8)) : null;
// autocannon calls setupRequest exactly once per request it sends, so a shared cursor sends
// each entry of keyList once.
let cursor = 0;
const nextKey = keyList ? () => keyList[cursor++] : () => Math.floor(Math.random() * keyCount);

const request = {
  method,
  headers: method === "PUT" ? { "content-type": contentType } : {},
  setupRequest(req, context) {
    const n = nextKey();
    // With pipelining 1 the context belongs to the one request in flight, so onResponse
    // below knows which key it answers.
    context.key = n;
    req.path = `/kv/${keyPrefix}${n}`;
    if (method === "PUT") req.body = values[Math.floor(Math.random() * VALUE_POOL)];
    return req;
  },
  onResponse(status, _body, context) {
    if (written && status >= 200 && status < 300) written[context.key >> 3] |= 1 << (context.key & 7);
  },
};

const instance = autocannon({
  url: urls,
  connections,
  pipelining: 1,
  ...(keyList ? { amount: keyList.length } : { duration: config.seconds }),
  requests: [request],
});
// autocannon's own duration starts before its clients are built; the load starts after that.
let startedAt = Date.now();
instance.once("start", () => (startedAt = Date.now()));
const guard = setTimeout(() => instance.stop(), config.maxSeconds * 1000);
const result = await instance;
clearTimeout(guard);

const loadSec = (result.finish.getTime() - startedAt) / 1000;
process.stdout.write(
  JSON.stringify({
    durationSec: loadSec,
    completed: result.requests.total,
    ok: result["2xx"],
    okPerSec: loadSec > 0 ? result["2xx"] / loadSec : 0,
    latencyMs: { mean: result.latency.mean, p50: result.latency.p50, p99: result.latency.p99, p99_9: result.latency.p99_9, max: result.latency.max },
    statusCounts: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    ...(written ? { written: Buffer.from(written).toString("base64") } : {}),
  }),
);
