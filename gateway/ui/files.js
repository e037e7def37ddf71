// Files over HTTP (PROTOCOL.md §9.1, §9.2): uploads with progress through
// XMLHttpRequest, downloads with fetch() and object URLs. The access token
// travels in the Authorization header only, never in a URL.

import { RequestError } from './protocol.js';

/** @typedef {import('./types.js').Attachment} Attachment */

/**
 * @typedef {object} UploadHandle
 * @property {Promise<Attachment>} done
 * @property {() => void} abort
 */

/**
 * Uploads a file.
 * @param {File} file
 * @param {() => Promise<string>} token gives a valid access token
 * @param {(loaded: number, total: number) => void} onProgress
 * @returns {UploadHandle}
 */
export function upload(file, token, onProgress) {
  /** @type {XMLHttpRequest|null} */
  let xhr = null;
  let aborted = false;
  /** @param {string} tok @returns {Promise<Attachment>} */
  const attempt = (tok) =>
    new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      xhr = x;
      x.open('POST', '/api/upload');
      x.setRequestHeader('Authorization', `Bearer ${tok}`);
      x.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
      x.setRequestHeader('X-Filename', encodeURIComponent(file.name || 'file'));
      x.responseType = 'json';
      x.upload.addEventListener('progress', (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size));
      x.addEventListener('load', () => {
        const body = x.response;
        if (x.status >= 200 && x.status < 300 && body && body.blob) resolve(/** @type {Attachment} */ (body));
        else reject(httpError(x.status, body, x.getResponseHeader('Retry-After')));
      });
      x.addEventListener('error', () => reject(new RequestError({ code: 'offline', message: 'Upload failed: no connection.' })));
      x.addEventListener('abort', () => reject(new RequestError({ code: 'aborted', message: 'Upload cancelled.' })));
      x.send(file);
    });
  const done = (async () => {
    try {
      return await attempt(await token());
    } catch (e) {
      if (!aborted && e instanceof RequestError && e.code === 'token_expired') return attempt(await token());
      throw e;
    }
  })();
  return {
    done,
    abort: () => {
      aborted = true;
      xhr?.abort();
    },
  };
}

/**
 * @param {number} status @param {any} body @param {string|null} retryAfter
 */
function httpError(status, body, retryAfter) {
  const e = body && typeof body === 'object' && body.error ? body.error : null;
  if (e && typeof e.code === 'string') return new RequestError(e);
  /** @type {Record<number, string>} */
  const codes = { 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found', 413: 'too_large', 415: 'unsupported_type', 429: 'rate_limited' };
  const code = codes[status] ?? (status >= 500 ? 'unavailable' : 'bad_request');
  return new RequestError({
    code,
    message: code === 'too_large' ? 'The file is too large.' : `Upload failed (HTTP ${status}).`,
    retry_after_ms: retryAfter ? Number(retryAfter) * 1000 : undefined,
  });
}

/** @type {Map<string, Promise<string>>} blob id → object URL */
const objectUrls = new Map();

/**
 * Fetches a blob with the access token and returns an object URL for it
 * (cached for the page's life: blobs are content-addressed).
 * @param {string} blob
 * @param {() => Promise<string>} token
 * @returns {Promise<string>}
 */
export function blobUrl(blob, token) {
  let p = objectUrls.get(blob);
  if (!p) {
    p = (async () => {
      const get = async () =>
        fetch(`/api/blob/${encodeURIComponent(blob)}`, {
          headers: { Authorization: `Bearer ${await token()}` },
          credentials: 'omit',
        });
      let res = await get();
      if (res.status === 401) res = await get();
      if (!res.ok) {
        let body = null;
        try {
          body = await res.json();
        } catch {
          /* not JSON */
        }
        throw httpError(res.status, body, res.headers.get('Retry-After'));
      }
      return URL.createObjectURL(await res.blob());
    })();
    objectUrls.set(blob, p);
    p.catch(() => objectUrls.delete(blob));
  }
  return p;
}

/**
 * Saves a blob as a file through a temporary link.
 * @param {string} blob @param {string} name @param {() => Promise<string>} token
 */
export async function downloadBlob(blob, name, token) {
  const url = await blobUrl(blob, token);
  const a = document.createElement('a');
  a.href = url;
  a.download = name || 'download';
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
}

/** Image types shown inline. @param {string} mime */
export function isInlineImage(mime) {
  return ['image/png', 'image/jpeg', 'image/gif', 'image/webp'].includes(mime);
}
