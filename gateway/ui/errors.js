// Errors as the UI tells them: a failed request's code in words, and
// whether it only means the connection is down.

import { RequestError } from './protocol.js';
import { errorText } from './util.js';

/** @param {unknown} e */
export function isOffline(e) {
  return e instanceof RequestError && (e.code === 'offline' || e.code === 'disconnected');
}

/** @param {unknown} e */
export function errText(e) {
  if (e instanceof RequestError) return errorText(e);
  return e instanceof Error ? e.message : String(e);
}

