// Modules that exist only in the browser build (see src/platform/browser.ts).
declare module 'sisn:shaders' {
  /** WGSL sources by name: `conv2d`, `include/flat`, ... */
  const sources: Readonly<Record<string, string>>;
  export default sources;
}

declare module 'pngjs/browser.js' {
  import pngjs from 'pngjs';
  export default pngjs;
}
