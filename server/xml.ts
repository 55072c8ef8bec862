// XML out (a small string builder: listings of 1000 keys are on the hot path) and XML in
// (xml2js, with a size bound; anything malformed is MalformedXML).
import { parseStringPromise } from 'xml2js';
import { S3Error } from './errors';

export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

const NEEDS_ESCAPE = /[&<>"'\x00-\x08\x0b-\x1f]/;

export function esc(s: string): string {
  // Most keys, dates and ETags need nothing: one test instead of two replace passes.
  if (!NEEDS_ESCAPE.test(s)) return s;
  // Characters XML 1.0 cannot carry at all are written as numeric references AWS-style; so is CR,
  // which a parser would otherwise normalise to LF (a key "a\rb" must list as itself).
  return s.replace(/[&<>"']/g, (c) => ESC[c]).replace(/[\x00-\x08\x0b-\x1f]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export type XmlValue = string | number | boolean | undefined | null | XmlNode | XmlRaw | XmlValue[];
export interface XmlNode { name: string; children: XmlValue; attrs?: Record<string, string> }
/** Already-rendered XML, emitted as it is: a listing's 1000 entries are built as strings. */
export interface XmlRaw { raw: string }

export function raw(s: string): XmlRaw { return { raw: s }; }

/** An element; undefined/null children drop the element entirely (optional fields). */
export function x(name: string, children: XmlValue, attrs?: Record<string, string>): XmlNode {
  return { name, children, attrs };
}

function render(v: XmlValue, out: string[]): void {
  if (v === undefined || v === null) return;
  if (Array.isArray(v)) { for (const c of v) render(c, out); return; }
  if (typeof v === 'object') {
    if ('raw' in v) { out.push(v.raw); return; }
    if (v.children === undefined || v.children === null) return;
    const attrs = v.attrs ? Object.entries(v.attrs).map(([k, a]) => ` ${k}="${esc(a)}"`).join('') : '';
    out.push(`<${v.name}${attrs}>`);
    render(v.children, out);
    out.push(`</${v.name}>`);
    return;
  }
  out.push(esc(String(v)));
}

/** An element (or list of them) as a string. */
export function renderXml(v: XmlValue): string {
  const out: string[] = [];
  render(v, out);
  return out.join('');
}

/** A complete document whose root carries the S3 namespace. */
export function xmlDoc(root: string, children: XmlValue, ns = true): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  render(x(root, children, ns ? { xmlns: S3_NS } : undefined), out);
  return out.join('');
}

export function errorXml(code: string, message: string, resource: string, requestId: string, extra: Record<string, string> = {}): string {
  return xmlDoc('Error', [
    x('Code', code), x('Message', message),
    ...Object.entries(extra).map(([k, v]) => x(k, v)),
    x('Resource', resource), x('RequestId', requestId),
  ], false);
}

/** Parse an XML request body into xml2js's object form (arrays everywhere, no root wrapper kept). */
export async function parseXml(body: Buffer, root: string): Promise<Record<string, unknown[]>> {
  let doc: Record<string, unknown>;
  try {
    doc = await parseStringPromise(body.toString('utf8'), { explicitArray: true, trim: false, explicitRoot: true, strict: true });
  } catch {
    throw new S3Error('MalformedXML');
  }
  if (!doc || typeof doc !== 'object' || !(root in doc)) throw new S3Error('MalformedXML');
  const r = doc[root];
  if (r === '' || r === undefined) return {};
  if (typeof r !== 'object') throw new S3Error('MalformedXML');
  return r as Record<string, unknown[]>;
}

/** Text of the first child element `name`, or undefined. */
export function text(node: Record<string, unknown[]> | undefined, name: string): string | undefined {
  const v = node?.[name]?.[0];
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v && '_' in (v as object)) return String((v as { _: unknown })._);
  if (typeof v === 'object' && v && Object.keys(v).length === 0) return '';
  return undefined;
}

export function children(node: Record<string, unknown[]> | undefined, name: string): Record<string, unknown[]>[] {
  const v = node?.[name];
  if (!v) return [];
  return v.map((c) => (typeof c === 'object' && c ? (c as Record<string, unknown[]>) : {}));
}

// Listed objects written together share their second: a listing page formats far fewer
// distinct seconds than entries (toISOString was a twentieth of a page).
let lastIso = { second: NaN, text: '' };

export function isoDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second === lastIso.second) return lastIso.text;
  const text = isoDateOf(ms);
  lastIso = { second, text };
  return text;
}

function isoDateOf(ms: number): string {
  const iso = new Date(ms).toISOString();
  // YYYY-MM-DDTHH:MM:SS.sssZ: whole seconds, as S3 lists them (other lengths: years past 9999).
  return iso.length === 24 ? `${iso.slice(0, 20)}000Z` : iso.replace(/\.\d{3}Z$/, '.000Z');
}
export function httpDate(ms: number): string { return new Date(ms).toUTCString(); }
