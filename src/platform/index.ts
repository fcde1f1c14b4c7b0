/**
 * The host the engine runs on. This module is the seam: it is Node's (./node.ts) as compiled by
 * tsc, and the web build (scripts/build-web.mjs) resolves this one import to ./browser.ts instead.
 * Nothing else in src/ that the browser bundle reaches imports fs, zlib, path, url or Dawn.
 */
export { platform } from './node.js';
export type { Platform, PngCodec, PngImage, CacheFile } from './types.js';
