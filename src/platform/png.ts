/** The PNG codec over pngjs, which Node and the browser build load differently. */
import type pngjs from 'pngjs';
import type { PngCodec } from './types.js';

/** `toBuffer` wraps bytes in the Buffer class this pngjs build expects (Node's or the `buffer` package's). */
export function pngjsCodec(png: typeof pngjs, toBuffer: (bytes: Uint8Array) => Buffer): PngCodec {
  return {
    decode(bytes) {
      const image = png.PNG.sync.read(toBuffer(bytes));
      return { width: image.width, height: image.height, rgba: image.data, alpha: image.alpha };
    },
    encode(width, height, channels, data) {
      // pngjs colour types: 2 = RGB, 6 = RGBA.
      const colorType = channels === 4 ? 6 : 2;
      const options = { colorType, inputColorType: colorType, inputHasAlpha: channels === 4 } as const;
      const image = new png.PNG({ width, height, ...options });
      image.data = toBuffer(data);
      return png.PNG.sync.write(image, options);
    },
  };
}
