// What the index holds and how its keys are ordered. Keys are bytes: a one-byte namespace, then
// NUL-separated fields, so that all objects of a bucket are one contiguous range in UTF-8 byte
// order (S3's listing order) and listing with prefix/delimiter/marker is a range scan.

export const NS_BUCKET = 0x62; // 'b'  b <bucket>
export const NS_OBJECT = 0x6f; // 'o'  o <bucket> NUL <key>
export const NS_UPLOAD = 0x75; // 'u'  u <bucket> NUL <key> NUL <uploadId>
export const NS_PART = 0x70;   // 'p'  p <uploadId> NUL <part number, 5 digits>
export const NS_HEAL = 0x68;   // 'h'  h <dataDir>
export const NS_INLINE = 0x69; // 'i'  i <dataDir>  bytes of an inline part, apart from the record so listing never reads them
export const NS_VERSION = 0x76; // 'v'  v <bucket> NUL <key> NUL <inverted version clock>: every version, newest first
export const NS_KEYS = 0x6b;   // 'k'  k <access key>  (server's access keys; storage only stores them)

const SEP = Buffer.from([0]);

export function key(ns: number, ...fields: string[]): Buffer {
  const parts: Buffer[] = [Buffer.from([ns])];
  fields.forEach((f, i) => {
    if (i > 0) parts.push(SEP);
    parts.push(Buffer.from(f, 'utf8'));
  });
  return Buffer.concat(parts);
}

/** Prefix of a namespace + leading fields, ending with the separator (for range scans). */
export function keyPrefix(ns: number, ...fields: string[]): Buffer {
  return Buffer.concat([key(ns, ...fields), SEP]);
}

/** Smallest key greater than every key starting with `p`. */
export function prefixEnd(p: Buffer): Buffer {
  const b = Buffer.from(p);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) { b[i]++; return b.subarray(0, i + 1); }
  }
  return Buffer.from([0xff, 0xff, 0xff, 0xff]);
}

export interface ErasureLayout { data: number; parity: number; blockSize: number; dist: number }

/** One stored piece of an object: a single PUT's body or one multipart part. */
export interface PartRecord {
  number: number;
  size: number;
  etag: string;           // quoted-less hex md5 (or random for directory buckets)
  crc32c: number;         // of this part's bytes
  dataDir: string;        // id of the shard files (or of the inline bytes under NS_INLINE)
  inline?: boolean;       // bytes live in the index under NS_INLINE, fully replicated
  checksums?: Record<string, string>;
  mtime?: number;
}

export interface ObjectRecord {
  bucket: string;
  key: string;
  size: number;
  etag: string;           // without quotes; multipart: md5-of-md5s "-N"
  mtime: number;          // ms since epoch
  versionId: string;
  contentType?: string;
  headers: Record<string, string>;   // content-encoding, -disposition, -language, cache-control, expires
  meta: Record<string, string>;      // user metadata, lower-cased names without x-amz-meta-
  tags?: Record<string, string>;
  checksums: Record<string, string>; // algorithm -> base64 value, e.g. CRC32C
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
  ec: ErasureLayout;
  parts: PartRecord[];
  multipart: boolean;
  /** True once a version record (NS_VERSION) exists for this version. */
  versioned?: boolean;
  /** Version clock (µs, monotonic per process); orders versions of a key newest first. */
  vseq?: number;
  deleteMarker?: boolean;
  retention?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; until: number };
  /** Canned ACL of this version (server/ decides what it grants) and the key that wrote it. */
  acl?: string;
  owner?: string;
  /** The multipart upload that produced this version (a retried Complete is answered from it). */
  uploadId?: string;
  legalHold?: boolean;
}

export function encodeJson(v: unknown): Buffer { return Buffer.from(JSON.stringify(v), 'utf8'); }

/**
 * An object record as stored: JSON, with what a listing shows first and in this order, so that
 * listedFields reads a page's records without parsing them (JSON.parse of each was half of a
 * 1000-key page's time). Records of older Kilns begin with "bucket" and are parsed whole.
 */
export function encodeRecord(rec: ObjectRecord): Buffer {
  const { size, etag, mtime, deleteMarker, checksumType, checksums, ...rest } = rec;
  return encodeJson({ size, etag, mtime, deleteMarker, checksumType, checksums: checksums ?? {}, ...rest });
}

// Every part's "dataDir" as JSON.stringify writes it; a user's tag may be named so too.
const DATA_DIR = /"dataDir":"([^"\\]*)"/g;

/**
 * The data dirs a stored object, version or part record names, without parsing it. May name
 * more than the record's parts (a tag called "dataDir"), never fewer: what the orphan sweep
 * needs, which may only keep too much.
 */
export function dataDirsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(DATA_DIR)) out.push(m[1]);
  return out;
}

/** What a listing shows of an object. */
export type ListedFields = Pick<ObjectRecord, 'size' | 'etag' | 'mtime' | 'checksums' | 'checksumType' | 'deleteMarker'>;

// The head encodeRecord writes. An optional field whose value does not fit is not skipped over:
// the checksums that must follow then fail to match, and the record is parsed whole.
const LISTED_HEAD = /^\{"size":(\d+),"etag":"([^"\\]*)","mtime":(\d+)(?:,"deleteMarker":(true|false))?(?:,"checksumType":"(FULL_OBJECT|COMPOSITE)")?(?:,"checksums":(\{[^{}"\\]*(?:"[A-Z0-9]+":"[^"\\]*"[^{}"\\]*)*\}))[,}]/;

/** A stored record's listing fields: from its head when encodeRecord wrote it, else (older records) parsed whole. */
export function listedFields(text: string): ListedFields {
  // Older records begin '{"bucket"': no match attempt, straight to the parse.
  const m = text.startsWith('{"size":') ? LISTED_HEAD.exec(text) : null;
  if (!m) {
    const r = JSON.parse(text) as ObjectRecord;
    return { size: r.size, etag: r.etag, mtime: r.mtime, checksums: r.checksums, checksumType: r.checksumType, deleteMarker: r.deleteMarker };
  }
  const out: ListedFields = { size: Number(m[1]), etag: m[2], mtime: Number(m[3]), checksums: JSON.parse(m[6]) as Record<string, string> };
  if (m[4] !== undefined) out.deleteMarker = m[4] === 'true';
  if (m[5] !== undefined) out.checksumType = m[5] as ListedFields['checksumType'];
  return out;
}
export function decodeJson<T>(b: Buffer | string): T { return JSON.parse(typeof b === 'string' ? b : b.toString('utf8')) as T; }

export interface BucketRecord {
  name: string;
  created: number;
  owner?: string;
  versioning?: 'Enabled' | 'Suspended';
  config: Record<string, unknown>;   // tagging, cors, lifecycle, ... kept opaque by storage
}

export interface UploadRecord {
  bucket: string;
  key: string;
  uploadId: string;
  initiated: number;
  contentType?: string;
  headers: Record<string, string>;
  meta: Record<string, string>;
  tags?: Record<string, string>;
  checksumAlgorithm?: string;
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
  ec: ErasureLayout;
  lock?: Pick<ObjectRecord, 'retention' | 'legalHold'>;
}

export interface HealRecord {
  dataDir: string;
  size: number;
  ec: ErasureLayout;
  queued: number;
}
