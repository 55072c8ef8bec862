// Public surface of storage/: what server/ may import.
export { ObjectStore, StoreOptions, PutOptions, GetResult, Body, stripQuotes, randomToken, DeleteResult } from './object-store';
export { VersionListOptions, VersionListResult, VersionEntry } from './versioning';
export { Multipart, MIN_PART_SIZE, CompletePart, StoredPart, UploadInit } from './multipart';
export { StorageError, StorageErrorCode, isStorageError } from './errors';
export { ListOptions, ListResult, ListedObject } from './list';
export { ObjectRecord, BucketRecord, UploadRecord, PartRecord } from './records';
export { Drive } from './drive';
export * as limits from './constants';
export { KvArea } from './kv';
export { crcCombine, crc64Combine, CRC32_POLY, CRC32C_POLY } from './crc-combine';
export { crcBase64 } from './bitrot';
