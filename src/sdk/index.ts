export { RinglogClient, RinglogApiError, type ClientOptions, type ReadResult, type Version, type WriteResult, type WriteOptions, type Value } from "./client.ts";
