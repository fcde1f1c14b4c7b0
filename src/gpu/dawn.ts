/** Dawn's Node bindings (npm `webgpu`) as the engine's source of adapters. */
import { create } from 'webgpu';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { AdapterHost } from '../platform/types.js';

// Vulkan drivers installed outside the Vulkan loader's search path: SwiftShader as Debian's
// chromium package ships it. They are added for this process only, when adapters are listed or
// chosen by name; a later default choice in the same process still passes over SwiftShader.
const UNREGISTERED_VULKAN_DRIVERS = ['/usr/lib/chromium/vk_swiftshader_icd.json'];

function revealDrivers(): void {
  const added = (process.env.VK_ADD_DRIVER_FILES ?? '').split(':').filter(Boolean);
  const missing = UNREGISTERED_VULKAN_DRIVERS.filter((f) => !added.includes(f) && existsSync(f));
  if (missing.length) process.env.VK_ADD_DRIVER_FILES = [...added, ...missing].join(':');
}

/** Worker threads per core for Mesa's software drivers, unless LP_NUM_THREADS is set (see below). */
const SOFTWARE_THREADS_PER_CORE = 4;
/** llvmpipe's own ceiling (LP_MAX_THREADS); a larger value would be clamped anyway. */
const SOFTWARE_THREADS_MAX = 32;

// Mesa's software drivers (lavapipe, llvmpipe) cut each compute dispatch into one static chunk of
// workgroups per worker thread (LP_NUM_THREADS, one per core by default) and wait for the last
// chunk, so a worker that starts late (the machine's other work, Node's own threads) leaves a
// core idle for the rest of the dispatch. With several chunks per core the OS balances them (what
// it changed: docs/performance.md). The driver reads the variable when it loads, so it is set before the
// first instance; a value the user set is kept, and other drivers never read it.
function balanceSoftwareDriverThreads(): void {
  if (process.env.LP_NUM_THREADS === undefined)
    process.env.LP_NUM_THREADS = String(
      Math.min(SOFTWARE_THREADS_MAX, SOFTWARE_THREADS_PER_CORE * availableParallelism()),
    );
}

const OPENGLES = 'backend=opengles';

// Dawn's OpenGL ES backend starts EGL, whose default platform needs a display (X11 or Wayland):
// without one, or on a server, EGL fails to initialise. Mesa's surfaceless platform needs none
// and is all compute needs. EGL reads the variable when the backend first starts; a value the
// user set is kept.
function startEglWithoutDisplay(): void {
  if (process.env.EGL_PLATFORM === undefined) process.env.EGL_PLATFORM = 'surfaceless';
}

export const dawnHost: AdapterHost = {
  create(flags) {
    balanceSoftwareDriverThreads();
    if (flags.includes(OPENGLES)) startEglWithoutDisplay();
    return create(flags);
  },
  revealDrivers,
  // Dawn answers a compatibility request with a Vulkan adapter (a core one) where there is one.
  compatibilityFlags: [OPENGLES],
};
