/**
 * Keys hash onto a 128-bit ring (MD5 of the key's UTF-8 bytes, as Dynamo does: placement,
 * not security). The ring is cut into Q equal, fixed partitions, the vnodes; Q is a power of
 * two so a key's vnode is simply the top log2(Q) bits of its hash.
 */
const hasher = new Bun.CryptoHasher("md5");

export function keyHash(key: string): Uint8Array {
  hasher.update(key);
  return hasher.digest() as unknown as Uint8Array;
}

export function isPowerOfTwo(q: number): boolean {
  return Number.isInteger(q) && q >= 1 && (q & (q - 1)) === 0;
}

export function vnodeOf(key: string, q: number): number {
  const h = keyHash(key);
  const top = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
  return q === 1 ? 0 : Math.floor(top / (2 ** 32 / q));
}
