import { describe, expect, test } from "bun:test";
import { Batcher } from "../../src/transport/batcher.ts";

/** A send whose calls the test completes by hand, recording what each call carried. */
function manualSend() {
  const calls: { peer: string; reqs: number[]; settle: (ok: boolean) => void }[] = [];
  const send = (peer: string, reqs: number[]) =>
    new Promise<number[]>((resolve, reject) => {
      calls.push({ peer, reqs: [...reqs], settle: (ok) => (ok ? resolve(reqs.map((r) => r * 10)) : reject(new Error(`call to ${peer} failed`))) });
    });
  return { calls, send };
}

const nextTurn = () => new Promise((r) => setImmediate(r));

describe("per-peer batching", () => {
  test("requests submitted in one turn share one call per peer, and each gets its own answer", async () => {
    const { calls, send } = manualSend();
    const b = new Batcher<number, number>(send, 2);
    const answers = [b.submit("a", 1), b.submit("a", 2), b.submit("b", 3)];
    await nextTurn();
    expect(calls.map((c) => [c.peer, c.reqs])).toEqual([
      ["a", [1, 2]],
      ["b", [3]],
    ]);
    calls.forEach((c) => c.settle(true));
    expect(await Promise.all(answers)).toEqual([10, 20, 30]);
  });

  test("at most maxInFlight calls per peer run at once; what arrives meanwhile goes out together when one returns", async () => {
    const { calls, send } = manualSend();
    const b = new Batcher<number, number>(send, 1);
    const first = b.submit("a", 1);
    await nextTurn();
    const waiting = [b.submit("a", 2), b.submit("a", 3)];
    await nextTurn();
    const later = b.submit("a", 4);
    await nextTurn();
    expect(calls.map((c) => c.reqs)).toEqual([[1]]);
    calls[0]!.settle(true);
    expect(await first).toBe(10);
    await nextTurn();
    expect(calls.map((c) => c.reqs)).toEqual([[1], [2, 3, 4]]);
    calls[1]!.settle(true);
    expect(await Promise.all([...waiting, later])).toEqual([20, 30, 40]);
  });

  test("a failed call rejects exactly its own requests, and the queue behind it still goes out", async () => {
    const { calls, send } = manualSend();
    const b = new Batcher<number, number>(send, 1);
    const failing = b.submit("a", 1);
    await nextTurn();
    const behind = b.submit("a", 2);
    calls[0]!.settle(false);
    await expect(failing).rejects.toThrow("call to a failed");
    await nextTurn();
    expect(calls.map((c) => c.reqs)).toEqual([[1], [2]]);
    calls[1]!.settle(true);
    expect(await behind).toBe(20);
  });

  test("a send that throws synchronously rejects its requests instead of wedging the peer", async () => {
    let attempts = 0;
    const b = new Batcher<number, number>((_peer, reqs) => {
      if (attempts++ === 0) throw new Error("address unknown");
      return Promise.resolve(reqs);
    }, 1);
    await expect(b.submit("a", 1)).rejects.toThrow("address unknown");
    expect(await b.submit("a", 2)).toBe(2);
  });
});
