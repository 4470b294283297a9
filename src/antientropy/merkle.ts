/**
 * A vnode's Merkle tree over its keys' state digests, fixed shape: 256 leaves under 16
 * branches under one root. A key lives in one leaf (by a hash of the key); a leaf is the XOR
 * of its keys' hash(key, digest), so a changed key updates its leaf in O(1) from the old and
 * new digest, and branches and root are recomputed from the leaves only when asked for.
 * Replicas compare roots, then branches, then leaves, then the keys of differing leaves:
 * what is exchanged grows with the difference, not with the data.
 */
export const FANOUT = 16;
export const LEAVES = FANOUT * FANOUT;

/** Digest of a key's canonical state bytes. */
export function stateDigest(stateBytes: Uint8Array): bigint {
  return Bun.hash.wyhash(stateBytes);
}

export function leafOf(key: string): number {
  return Number(Bun.hash.wyhash(key, 0x9e3779b97f4a7c15n) % BigInt(LEAVES));
}

function contribution(key: string, digest: bigint): bigint {
  return Bun.hash.wyhash(key, digest);
}

export class MerkleTree {
  readonly leaves = new BigUint64Array(LEAVES);

  /** Accounts for a key's digest changing from `before` to `after` (null: absent). */
  update(key: string, before: bigint | null, after: bigint | null): void {
    const leaf = leafOf(key);
    let v = this.leaves[leaf]!;
    if (before !== null) v ^= contribution(key, before);
    if (after !== null) v ^= contribution(key, after);
    this.leaves[leaf] = v;
  }

  branch(i: number): bigint {
    return Bun.hash.wyhash(this.leaves.subarray(i * FANOUT, (i + 1) * FANOUT));
  }

  branches(): BigUint64Array {
    return BigUint64Array.from({ length: FANOUT }, (_, i) => this.branch(i));
  }

  root(): bigint {
    return Bun.hash.wyhash(this.branches());
  }

  leafRange(branch: number): BigUint64Array {
    return this.leaves.slice(branch * FANOUT, (branch + 1) * FANOUT);
  }
}

/** Indexes where two equally long hash arrays differ. */
export function differing(a: BigUint64Array, b: BigUint64Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}
