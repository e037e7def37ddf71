// A tiny key-value store over IndexedDB for what the page shows offline: the
// room list, the last page of each room, profiles and the outbox of unsent
// messages. Every key is prefixed with the user id; logout clears it all.
// Failures (private mode, quota) only cost the offline view, never the app.

const DB_NAME = 'confab';
const STORE = 'kv';

/** @type {Promise<IDBDatabase|null>|null} */
let dbPromise = null;

/** @returns {Promise<IDBDatabase|null>} */
function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve) => {
      try {
        const req = indexedDB.open(DB_NAME, 1);
        req.onupgradeneeded = () => req.result.createObjectStore(STORE);
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => resolve(null);
        req.onblocked = () => resolve(null);
      } catch {
        resolve(null);
      }
    });
  }
  return dbPromise;
}

/**
 * @template T
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore) => IDBRequest<T>} fn
 * @returns {Promise<T|undefined>}
 */
async function run(mode, fn) {
  const d = await db();
  if (!d) return undefined;
  return new Promise((resolve) => {
    try {
      const tx = d.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(undefined);
    } catch {
      resolve(undefined);
    }
  });
}

/**
 * @param {string} key
 * @returns {Promise<any>}
 */
export function cacheGet(key) {
  return run('readonly', (s) => s.get(key));
}

/** @param {string} key @param {unknown} value */
export async function cacheSet(key, value) {
  await run('readwrite', (s) => s.put(value, key));
}

/** @param {string} key */
export async function cacheDelete(key) {
  await run('readwrite', (s) => s.delete(key));
}

/** Removes everything (logout). */
export async function cacheClear() {
  await run('readwrite', (s) => s.clear());
}
