// ListObjects (v1), ListObjectsV2 and ListObjectVersions: thin XML over storage's range scan.
import type { Ctx, Reply } from '../context';
import { xmlReply } from '../context';
import { S3Error } from '../errors';
import { x, xmlDoc, isoDate, esc, raw, renderXml, XmlRaw } from '../xml';
import { ownerXml } from './bucket';
import { checkDirectoryListing } from './express';
import { reportedChecksums } from './common';
import type { ListedObject, ListResult } from '../../storage';

const MAX_KEYS = 1000;

function maxKeys(ctx: Ctx): number {
  const v = ctx.query['max-keys'];
  if (v === undefined || v === '') return MAX_KEYS;
  if (!/^\d+$/.test(v)) throw new S3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range', { ArgumentName: 'max-keys', ArgumentValue: v });
  return Math.min(Number(v), MAX_KEYS);
}

function encodingType(ctx: Ctx): ((s: string) => string) {
  const e = ctx.query['encoding-type'];
  if (e === undefined) return (s) => s;
  if (e.toLowerCase() !== 'url') throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', { ArgumentName: 'encoding-type', ArgumentValue: e });
  return (s) => encodeURIComponent(s).replace(/%2F/g, '/');
}

/**
 * One <Contents> entry, written as a string: a page has up to 1000 of them, and building an element
 * tree for each was a third of a listing page's time. `owner` is the rendered <Owner> (or '').
 */
function contents(o: ListedObject, enc: (s: string) => string, owner: string): XmlRaw {
  let s = `<Contents><Key>${esc(enc(o.key))}</Key><LastModified>${isoDate(o.mtime)}</LastModified><ETag>&quot;${esc(o.etag)}&quot;</ETag>`;
  for (const [a] of reportedChecksums(o.checksums)) s += `<ChecksumAlgorithm>${esc(a)}</ChecksumAlgorithm>`;
  if (o.checksumType) s += `<ChecksumType>${esc(o.checksumType)}</ChecksumType>`;
  return raw(`${s}<Size>${o.size}</Size><StorageClass>STANDARD</StorageClass>${owner}</Contents>`);
}

/** The caller as a listing's <Owner>, rendered once per page. */
function ownerOf(ctx: Ctx, wanted: boolean): string {
  return wanted ? renderXml(x('Owner', ownerXml(ctx.identity.accessKey))) : '';
}

async function scan(ctx: Ctx, after: string | undefined): Promise<ListResult & { max: number }> {
  const max = maxKeys(ctx);
  const r = await ctx.store.listObjects(ctx.bucket, { prefix: ctx.query['prefix'] ?? '', delimiter: ctx.query['delimiter'] || undefined, after, maxKeys: max });
  return { ...r, max };
}

export async function listObjectsV1(ctx: Ctx): Promise<Reply> {
  const enc = encodingType(ctx);
  const marker = ctx.query['marker'] ?? '';
  const r = await scan(ctx, marker || undefined);
  const delim = ctx.query['delimiter'];
  const owner = ownerOf(ctx, true);
  return xmlReply(xmlDoc('ListBucketResult', [
    // v1 echoes Prefix unencoded even with encoding-type=url (SDKs decode only Marker, Delimiter and keys).
    x('Name', ctx.bucket), x('Prefix', ctx.query['prefix'] ?? ''), x('Marker', enc(marker)), x('MaxKeys', r.max),
    delim ? x('Delimiter', enc(delim)) : undefined,
    ctx.query['encoding-type'] ? x('EncodingType', 'url') : undefined,
    x('IsTruncated', r.isTruncated),
    r.isTruncated && delim && r.last !== undefined ? x('NextMarker', enc(r.last)) : undefined,
    r.objects.map((o) => contents(o, enc, owner)),
    r.commonPrefixes.map((p) => x('CommonPrefixes', x('Prefix', enc(p)))),
  ]));
}

export async function listObjectsV2(ctx: Ctx): Promise<Reply> {
  if (ctx.query['list-type'] !== '2') throw new S3Error('InvalidArgument', 'Invalid List Type', { ArgumentName: 'list-type' });
  checkDirectoryListing(ctx);
  const enc = encodingType(ctx);
  const token = ctx.query['continuation-token'];
  let after = ctx.query['start-after'] || undefined;
  if (token !== undefined && token !== '') {
    const decoded = decodeToken(token);
    if (decoded === undefined) throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
    after = decoded;
  }
  const r = await scan(ctx, after);
  const delim = ctx.query['delimiter'];
  const owner = ownerOf(ctx, ctx.query['fetch-owner'] === 'true');
  return xmlReply(xmlDoc('ListBucketResult', [
    x('Name', ctx.bucket), x('Prefix', enc(ctx.query['prefix'] ?? '')),
    ctx.query['start-after'] ? x('StartAfter', enc(ctx.query['start-after'])) : undefined,
    token !== undefined ? x('ContinuationToken', token) : undefined,
    x('KeyCount', r.objects.length + r.commonPrefixes.length), x('MaxKeys', r.max),
    delim ? x('Delimiter', enc(delim)) : undefined,
    ctx.query['encoding-type'] ? x('EncodingType', 'url') : undefined,
    x('IsTruncated', r.isTruncated),
    r.isTruncated && r.last !== undefined ? x('NextContinuationToken', encodeToken(r.last)) : undefined,
    r.objects.map((o) => contents(o, enc, owner)),
    r.commonPrefixes.map((p) => x('CommonPrefixes', x('Prefix', enc(p)))),
  ]));
}

/** Continuation tokens are opaque to clients: a tagged base64url of the last key returned. */
export function encodeToken(last: string): string { return Buffer.from(`k1:${last}`, 'utf8').toString('base64url'); }
export function decodeToken(t: string): string | undefined {
  const s = Buffer.from(t, 'base64url').toString('utf8');
  return s.startsWith('k1:') ? s.slice(3) : undefined;
}

/** Every version of every key, newest first per key; delete markers as DeleteMarker entries. */
export async function listObjectVersions(ctx: Ctx): Promise<Reply> {
  const enc = encodingType(ctx);
  const keyMarker = ctx.query['key-marker'] ?? '';
  const versionIdMarker = ctx.query['version-id-marker'] ?? '';
  if (versionIdMarker && !keyMarker) throw new S3Error('InvalidArgument', 'A version-id marker cannot be specified without a key marker.', { ArgumentName: 'version-id-marker' });
  const max = maxKeys(ctx);
  const delim = ctx.query['delimiter'];
  const r = await ctx.store.listVersions(ctx.bucket, {
    prefix: ctx.query['prefix'] ?? '', delimiter: delim || undefined, keyMarker: keyMarker || undefined,
    versionIdMarker: versionIdMarker || undefined, maxKeys: max,
  });
  const owner = x('Owner', ownerXml(ctx.identity.accessKey));
  return xmlReply(xmlDoc('ListVersionsResult', [
    x('Name', ctx.bucket), x('Prefix', enc(ctx.query['prefix'] ?? '')), x('KeyMarker', enc(keyMarker)),
    x('VersionIdMarker', versionIdMarker), x('MaxKeys', max),
    delim ? x('Delimiter', enc(delim)) : undefined,
    ctx.query['encoding-type'] ? x('EncodingType', 'url') : undefined,
    x('IsTruncated', r.isTruncated),
    r.isTruncated && r.nextKeyMarker !== undefined ? x('NextKeyMarker', enc(r.nextKeyMarker)) : undefined,
    r.isTruncated && r.nextVersionIdMarker !== undefined ? x('NextVersionIdMarker', r.nextVersionIdMarker) : undefined,
    r.versions.map(({ record: o, isLatest }) => o.deleteMarker
      ? x('DeleteMarker', [x('Key', enc(o.key)), x('VersionId', o.versionId), x('IsLatest', isLatest), x('LastModified', isoDate(o.mtime)), owner])
      : x('Version', [
        x('Key', enc(o.key)), x('VersionId', o.versionId || 'null'), x('IsLatest', isLatest), x('LastModified', isoDate(o.mtime)),
        x('ETag', `"${o.etag}"`), x('Size', o.size), x('StorageClass', 'STANDARD'), owner,
      ])),
    r.commonPrefixes.map((p) => x('CommonPrefixes', x('Prefix', enc(p)))),
  ]));
}
