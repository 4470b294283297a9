export { RinglogClient, RinglogApiError, type ClientOptions, type ReadResult, type Version, type WriteResult, type WriteOptions, type ReadOptions, type QuorumValue, type Value } from "./client.ts";
export { RinglogAdmin, type AdminOptions, type Plan, type Cluster } from "./admin.ts";
