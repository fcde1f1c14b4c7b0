#!/usr/bin/env node
// Makes sure Dawn finds a WebGPU adapter before the demo or the tests run.
//
// A machine that already has an adapter (a real GPU, or a Vulkan driver installed earlier) is
// never touched. Otherwise, on Debian/Ubuntu as root, Mesa's lavapipe (Vulkan on the CPU) is
// installed; on Debian bookworm it must come from bookworm-backports, because bookworm's own
// Mesa 22 lacks a Vulkan feature Dawn requires. Anywhere else we stop and say what to install.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

// Probing runs in a child process: a Vulkan loader that was missing when Dawn first looked is
// not looked for again in the same process.
function adapterDescription() {
  const probe = `
    import { create } from 'webgpu';
    const gpu = create([]);
    const adapter = await gpu.requestAdapter();
    if (!adapter) process.exit(3);
    const i = adapter.info;
    console.log([i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' / ') || 'unnamed adapter');
    process.exit(0);`;
  try {
    return execFileSync(process.execPath, ['--input-type=module', '-e', probe], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

function osRelease() {
  if (!existsSync('/etc/os-release')) return {};
  const fields = {};
  for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=("?)(.*)\2$/.exec(line);
    if (m) fields[m[1]] = m[3];
  }
  return fields;
}

function run(cmd, args) {
  console.error(`ensure-adapter: ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function installLavapipe(os) {
  const packages = ['libvulkan1', 'mesa-vulkan-drivers'];
  if (os.ID === 'debian' && os.VERSION_CODENAME === 'bookworm') {
    const list = '/etc/apt/sources.list.d/bookworm-backports.list';
    const already = execFileSync('bash', ['-c', 'grep -rhs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ || true'], { encoding: 'utf8' });
    if (!already.trim()) writeFileSync(list, 'deb http://deb.debian.org/debian bookworm-backports main\n');
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', '-t', 'bookworm-backports', ...packages]);
  } else {
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', ...packages]);
  }
}

const found = adapterDescription();
if (found !== null) {
  if (process.argv.includes('--verbose')) console.log(`WebGPU adapter: ${found}`);
  process.exit(0);
}

const os = osRelease();
const debianLike = os.ID === 'debian' || os.ID === 'ubuntu' || /debian|ubuntu/.test(os.ID_LIKE ?? '');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const advice =
  'No WebGPU adapter was found. Install a Vulkan driver: on Debian/Ubuntu, `libvulkan1 mesa-vulkan-drivers` ' +
  '(Mesa >= 23; on Debian bookworm take both from bookworm-backports: `apt-get install -t bookworm-backports ' +
  'libvulkan1 mesa-vulkan-drivers`), or your GPU vendor\'s Vulkan driver; on macOS Metal and on Windows D3D12 ' +
  'are used directly and need no install.';

if (!debianLike || !isRoot) {
  console.error(`ensure-adapter: ${advice}`);
  if (debianLike && !isRoot) console.error('ensure-adapter: run the same command as root, or install the packages above with sudo.');
  process.exit(1);
}

console.error('ensure-adapter: no WebGPU adapter; installing Mesa lavapipe (Vulkan on the CPU)...');
try {
  installLavapipe(os);
} catch (e) {
  console.error(`ensure-adapter: the install failed (${e.message}). ${advice}`);
  process.exit(1);
}
const after = adapterDescription();
if (after === null) {
  console.error(`ensure-adapter: lavapipe is installed but Dawn still finds no adapter. ${advice}`);
  process.exit(1);
}
console.error(`ensure-adapter: WebGPU adapter ready: ${after}`);
