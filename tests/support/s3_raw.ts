/**
 * A minimal S3 reader for tests that must look at the bucket without the code under test:
 * ListObjectsV2 (all pages) and GetObject, path-style, signed with AWS Signature V4 by hand.
 * Only what tests need; no retries.
 *
 * Must not import the code under test or the AWS SDK.
 */

/** Bound on one request. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Bound on the pages one listing reads. */
const LIST_PAGES_MAX = 1_000;

export interface S3Access {
  /** `http://HOST:PORT`, path-style. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ListedObject {
  key: string;
  size: number;
}

/** Every object under `prefix`, in key order. */
export async function listObjects(s3: S3Access, prefix: string): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  let token: string | null = null;
  for (let page = 0; page < LIST_PAGES_MAX; page++) {
    const query: Record<string, string> = { "list-type": "2", prefix };
    if (token !== null) query["continuation-token"] = token;
    const xml = new TextDecoder().decode(await request(s3, "GET", "", query));
    for (const block of xml.match(/<Contents>[\s\S]*?<\/Contents>/g) ?? []) {
      const key = xmlText(block, "Key");
      const size = Number(xmlText(block, "Size"));
      if (key !== null) out.push({ key, size });
    }
    if (xmlText(xml, "IsTruncated") !== "true") {
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    }
    token = xmlText(xml, "NextContinuationToken");
  }
  throw new Error(`Listing "${prefix}" took more than ${LIST_PAGES_MAX} pages`);
}

/** The whole object. */
export function getObject(s3: S3Access, key: string): Promise<Uint8Array> {
  return request(s3, "GET", key, {});
}

function xmlText(xml: string, tag: string): string | null {
  const m = xml.match(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`));
  if (!m) return null;
  return m[1]
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&quot;", '"')
    .replaceAll("&apos;", "'")
    .replaceAll("&amp;", "&");
}

async function request(
  s3: S3Access,
  method: string,
  key: string,
  query: Record<string, string>,
): Promise<Uint8Array> {
  const path = `/${s3.bucket}/${key.split("/").map(uriEncode).join("/")}`;
  const canonicalQuery = Object.keys(query).sort()
    .map((k) => `${uriEncode(k)}=${uriEncode(query[k])}`)
    .join("&");
  const url = new URL(`${s3.endpoint}${path}${canonicalQuery ? `?${canonicalQuery}` : ""}`);
  const headers = await sign(s3, method, url.host, path, canonicalQuery);
  const response = await fetch(url, {
    method,
    headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const body = new Uint8Array(await response.arrayBuffer());
  if (!response.ok) {
    throw new Error(
      `S3 ${method} ${path} failed: HTTP ${response.status} ${new TextDecoder().decode(body)}`,
    );
  }
  return body;
}

/** RFC 3986 unreserved characters stay, everything else is %-encoded (SigV4's rule). */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

async function sign(
  s3: S3Access,
  method: string,
  host: string,
  path: string,
  canonicalQuery: string,
): Promise<Headers> {
  const now = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const date = now.slice(0, 8);
  const payloadHash = hex(await sha256(new Uint8Array(0)));
  const signed: Record<string, string> = {
    host,
    "x-amz-content-sha256": payloadHash,
    "x-amz-date": now,
  };
  const names = Object.keys(signed).sort();
  const canonicalRequest = [
    method,
    path,
    canonicalQuery,
    ...names.map((n) => `${n}:${signed[n]}`),
    "",
    names.join(";"),
    payloadHash,
  ].join("\n");
  const scope = `${date}/${s3.region}/s3/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    now,
    scope,
    hex(await sha256(new TextEncoder().encode(canonicalRequest))),
  ].join("\n");
  let signingKey: Uint8Array = new TextEncoder().encode(`AWS4${s3.secretAccessKey}`);
  for (const part of [date, s3.region, "s3", "aws4_request"]) {
    signingKey = await hmac(signingKey, part);
  }
  const headers = new Headers(signed);
  headers.delete("host");
  headers.set(
    "authorization",
    `AWS4-HMAC-SHA256 Credential=${s3.accessKeyId}/${scope}, SignedHeaders=${
      names.join(";")
    }, Signature=${hex(await hmac(signingKey, stringToSign))}`,
  );
  return headers;
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
}

async function hmac(key: Uint8Array, text: string): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    key as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", cryptoKey, new TextEncoder().encode(text)),
  );
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
