/** What the engine needs from its host, and gets differently in Node and in a browser. */
export interface Platform {
  /** The WebGPU entry point: Dawn's in Node, `navigator.gpu` in a browser. */
  gpu(): GPU;
  /** What to do when `gpu()` offers no adapter. */
  readonly noAdapterHelp: string;
  /** WebGPU's constant objects (GPUBufferUsage, ...) where the host does not define them globally. */
  readonly webgpuGlobals: Readonly<Record<string, unknown>>;
  /** The WGSL of `shaders/NAME.wgsl` (NAME may be `include/x`), or undefined when there is none. */
  shaderSource(name: string): string | undefined;
  /** The kernel files `shaders/*.wgsl`, without the extension. */
  shaderNames(): string[];
  readFile(path: string): Uint8Array;
  /** Writes through a temporary file and a rename, so a failed write leaves nothing behind. */
  writeFileAtomic(path: string, bytes: Uint8Array): void;
  /** Raw DEFLATE decompression (zip entries). */
  inflateRaw(bytes: Uint8Array): Uint8Array;
  png: PngCodec;
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
