/** What the engine needs from its host, and gets differently in Node and in a browser. */
export interface Platform {
  /** Where adapters come from: Dawn in Node, `navigator.gpu` in a browser. */
  readonly adapterHost: AdapterHost;
  /** Environment variables (SISN_ADAPTER, ...); none in a browser. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Whether waiting on a GPU promise keeps a CPU core busy (dawn.node does; browsers do not). */
  readonly pollsWhileWaiting: boolean;
  /** What to do when the host offers no adapter. */
  readonly noAdapterHelp: string;
  /** WebGPU's constant objects (GPUBufferUsage, ...) where the host does not define them globally. */
  readonly webgpuGlobals: Readonly<Record<string, unknown>>;
  /** The source of shaders/<family>.wgsl, or null when there is no such file. */
  readShader(family: string): string | null;
  /** The source of shaders/include/<name>.wgsl (helpers WGSL has no import for), or null. */
  readInclude(name: string): string | null;
  /** The kernel families in shaders/ (file names without `.wgsl`). */
  shaderFamilies(): string[];
  readFile(path: string): Uint8Array;
  /** Writes through a temporary file and a rename, so a failed write leaves nothing behind. */
  writeFileAtomic(path: string, bytes: Uint8Array): void;
  /**
   * Raw DEFLATE decompression (zip entries) to at most `maxBytes`; more throws an error with code ERR_BUFFER_TOO_LARGE.
   */
  inflateRaw(bytes: Uint8Array, maxBytes: number): Uint8Array;
  png: PngCodec;
  /**
   * A file of the user's cache folder (Node: SISN_CACHE_DIR, else the XDG cache folder), or null where there is none (a
   * browser).
   */
  cacheFile(name: string): CacheFile | null;
}

/** A text file that outlives the process; written atomically, its folder made on the first write. */
export interface CacheFile {
  readonly path: string;
  /** The text, or null when the file does not exist. */
  read(): string | null;
  write(text: string): void;
}

export interface AdapterHost {
  /** A WebGPU entry point; Dawn reads the flags `backend=B` and `adapter=NAME`, other hosts ignore them. */
  create(flags: string[]): GPU;
  /** Makes drivers that are installed but not registered visible before adapters are listed by name. */
  revealDrivers(): void;
  /**
   * The flags under which a compatibility request reaches the host's compatibility-only adapters
   * (Dawn: its OpenGL ES backend, which Vulkan adapters otherwise hide); none where the host
   * chooses by itself (a browser).
   */
  readonly compatibilityFlags: readonly string[];
}

export interface PngImage {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel, interleaved. */
  rgba: Uint8Array;
  /** Whether the file has an alpha channel. */
  alpha: boolean;
}

export interface PngCodec {
  decode(bytes: Uint8Array): PngImage;
  /** `data` is interleaved RGB (3 channels) or RGBA (4). */
  encode(width: number, height: number, channels: 3 | 4, data: Uint8Array): Uint8Array;
}
