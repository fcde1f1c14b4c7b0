/** Dawn's Node bindings (npm `webgpu`) as the engine's source of adapters. */
import { create } from 'webgpu';
import { existsSync } from 'node:fs';
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

export const dawnHost: AdapterHost = { create, revealDrivers };
