/** Progress of a tiled upscale on stderr (see train/progress.ts), for images of more than one tile. */
import { Progress } from '../train/progress.js';

/** An `onProgress` for one image: silent for a single tile; plain lines only after 10 s of work. */
export function tileProgress(): (done: number, total: number) => void {
  let progress: Progress | null = null;
  return (done, total) => {
    if (total < 2) return;
    progress ??= new Progress(total, done, { unit: 'tile', plainFirst: false });
    if (done > 0) progress.update(done);
  };
}
