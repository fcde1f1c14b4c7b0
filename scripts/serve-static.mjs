// A small static file server for the built web app, bound to 127.0.0.1 only.
//
// Only GET and HEAD (else 405). A request path is split into segments before it is decoded, so an
// encoded slash or backslash cannot make a new one; a bad escape, a NUL, a slash or backslash in a
// segment, or a '.' or '..' segment is a 400. A file is served only if its real path (symlinks
// resolved) lies inside the folder's real path; anything else is a 404. No request can end the
// server: an error in one is answered (500 if nothing was sent yet) or ends only its response.
import { createServer } from 'node:http';
import { createReadStream, realpathSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream';

/** @type {Record<string, string>} */
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.safetensors': 'application/octet-stream',
};

/**
 * The decoded path segments of a request target, or null when it is malformed.
 * @param {string | undefined} target
 * @returns {string[] | null}
 */
export function requestSegments(target) {
  if (typeof target !== 'string' || !target.startsWith('/')) return null;
  const path = target.split(/[?#]/, 1)[0];
  const segments = [];
  for (const raw of path.slice(1).split('/')) {
    let segment;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (segment === '.' || segment === '..' || /[/\\\0]/.test(segment)) return null;
    segments.push(segment);
  }
  // An empty last segment ('/', 'dir/') names the folder's index.html; empty ones elsewhere ('a//b') are malformed.
  if (segments.slice(0, -1).includes('')) return null;
  if (segments[segments.length - 1] === '') segments[segments.length - 1] = 'index.html';
  return segments;
}

/**
 * The real path of the file `segments` name inside `realRoot`, or null where there is none.
 * @param {string} realRoot
 * @param {string[]} segments
 * @returns {{ file: string, size: number } | null}
 */
function fileInside(realRoot, segments) {
  try {
    const file = realpathSync(join(realRoot, ...segments));
    if (!file.startsWith(realRoot + sep)) return null;
    const stat = statSync(file);
    return stat.isFile() ? { file, size: stat.size } : null;
  } catch {
    return null;
  }
}

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {string} text
 * @param {Record<string, string>} [headers]
 */
function answer(res, status, text, headers = {}) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(`${text}\n`);
}

/**
 * Serves `root` on 127.0.0.1:`port` (0: any free port); resolves to { server, url } once listening.
 * @param {string} folder
 * @param {number} port
 * @returns {Promise<{ server: import('node:http').Server, url: string }>}
 */
export function serveStatic(folder, port) {
  const realRoot = realpathSync(resolve(folder));
  const server = createServer((req, res) => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return answer(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
      const segments = requestSegments(req.url);
      if (!segments) return answer(res, 400, 'bad request');
      const found = fileInside(realRoot, segments);
      if (!found) return answer(res, 404, 'not found');
      res.writeHead(200, {
        'content-type': TYPES[extname(found.file)] ?? 'application/octet-stream',
        'content-length': found.size,
        'cache-control': 'no-cache',
      });
      if (req.method === 'HEAD') return res.end();
      // A read error (the file removed meanwhile) or a client gone ends this response only.
      pipeline(createReadStream(found.file), res, () => {});
    } catch {
      if (res.headersSent) res.destroy();
      else answer(res, 500, 'internal error');
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () =>
      resolvePromise({
        server,
        url: `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}/`,
      }),
    );
  });
}
