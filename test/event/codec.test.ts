import { expect, test } from "bun:test";
import { rememberedCodec } from "../../src/event/event.ts";
import { decodeState, encodeState } from "../../src/clock/fold.ts";
import { emptyContext } from "../../src/clock/context.ts";

test("a remembered codec encodes each object once and re-encodes a decoded one as its original bytes", () => {
  let encodes = 0;
  const codec = rememberedCodec<{ n: number }>(
    (v) => {
      encodes++;
      return new Uint8Array([v.n]);
    },
    (b) => ({ n: b[0]! }),
  );
  const v = { n: 7 };
  const first = codec.encode(v);
  expect(codec.encode(v)).toBe(first);
  expect(encodes).toBe(1);
  const bytes = new Uint8Array([9]);
  const decoded = codec.decode(bytes);
  expect(decoded).toEqual({ n: 9 });
  expect(codec.encode(decoded)).toBe(bytes);
  expect(encodes).toBe(1);
});

test("state bytes survive a decode/encode round trip unchanged, and equal states encode equally", () => {
  const ctx = emptyContext();
  ctx.vv.set("a", 2);
  const state = { siblings: [{ dot: { actor: "a", counter: 2 }, value: new Uint8Array([1, 2]), contentType: "x", ts: 5 }], ctx };
  const bytes = encodeState(state);
  const again = decodeState(new Uint8Array(bytes));
  expect(encodeState(again)).toEqual(bytes);
  expect(encodeState({ siblings: [...state.siblings], ctx })).toEqual(bytes);
});
