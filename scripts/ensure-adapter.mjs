#!/usr/bin/env node
// Makes sure Dawn finds a WebGPU adapter before the demo or the tests run.
//
// A machine that already has an adapter (a real GPU, or a Vulkan driver installed earlier) is
// never touched. Otherwise, on Debian/Ubuntu as root, Mesa's lavapipe (Vulkan on the CPU) is
// installed; on Debian bookworm it must come from bookworm-backports, because bookworm's own
// Mesa 22 lacks a Vulkan feature Dawn requires. Anywhere else we stop and say what to install.
//
// --for-tests: the tests also run on SwiftShader (Vulkan on the CPU with 4-lane subgroups). When
// Dawn cannot see it, Debian's `chromium` package is installed for it (as root): it ships
// SwiftShader outside the Vulkan loader's search path, where the engine adds it beside lavapipe
// for a process that asks for an adapter by name (src/gpu/dawn.ts), so the default stays lavapipe.
//
// The package manager's own output goes to a log file (INSTALL_LOG); the console gets one line of
// what was installed, or of what failed and where the log is.
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const INSTALL_LOG = join(tmpdir(), 'sisn-webgpu-ensure-adapter.log');

// Probing runs in a child process: a Vulkan loader that was missing when Dawn first looked is
// not looked for again in the same process. The probe's output, or null if it failed.
/**
 * @param {string} script
 * @param {NodeJS.ProcessEnv} [env]
 */
function probeDawn(script, env = process.env) {
  try {
    return execFileSync(
      process.execPath,
      ['--input-type=module', '-e', `import { create } from 'webgpu';\n${script}`],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        env,
      },
    ).trim();
  } catch {
    return null;
  }
}

function adapterDescription() {
  return probeDawn(`
    const adapter = await create([]).requestAdapter();
    if (!adapter) process.exit(3);
    const i = adapter.info;
    console.log([i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' / ') || 'unnamed adapter');
    process.exit(0);`);
}

// SwiftShader as Debian's chromium ships it; src/gpu/dawn.ts adds the same file.
const CHROMIUM_SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

// Whether Dawn sees SwiftShader, given chromium's copy as the engine gives it.
function seesSwiftShader() {
  const added = [process.env.VK_ADD_DRIVER_FILES, existsSync(CHROMIUM_SWIFTSHADER) ? CHROMIUM_SWIFTSHADER : '']
    .filter(Boolean)
    .join(':');
  const listing = probeDawn(
    `
    try { await create(['adapter=(sisn-webgpu: list the ' +
      'adapters)']).requestAdapter(); } catch (e) { console.log(e.message); }
    process.exit(0);`,
    { ...process.env, VK_ADD_DRIVER_FILES: added },
  );
  return /swiftshader/i.test(listing ?? '');
}

/** @returns {Partial<Record<string, string>>} */
function osRelease() {
  if (!existsSync('/etc/os-release')) return {};
  /** @type {Record<string, string>} */
  const fields = {};
  for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=("?)(.*)\2$/.exec(line);
    if (m) fields[m[1]] = m[3];
  }
  return fields;
}

// Runs a package manager command with its output appended to INSTALL_LOG.
/**
 * @param {string} cmd
 * @param {string[]} args
 */
function run(cmd, args) {
  appendFileSync(INSTALL_LOG, `\n$ ${cmd} ${args.join(' ')}\n`);
  const log = openSync(INSTALL_LOG, 'a');
  try {
    execFileSync(cmd, args, {
      stdio: ['ignore', log, log],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } finally {
    closeSync(log);
  }
}

/** @param {Partial<Record<string, string>>} os */
function installLavapipe(os) {
  const packages = ['libvulkan1', 'mesa-vulkan-drivers'];
  if (os.ID === 'debian' && os.VERSION_CODENAME === 'bookworm') {
    const list = '/etc/apt/sources.list.d/bookworm-backports.list';
    const already = execFileSync(
      'bash',
      ['-c', 'grep -rhs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ || true'],
      { encoding: 'utf8' },
    );
    if (!already.trim()) writeFileSync(list, 'deb http://deb.debian.org/debian bookworm-backports main\n');
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', '-t', 'bookworm-backports', ...packages]);
    return `${packages.join(' ')} from bookworm-backports`;
  }
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', ...packages]);
  return packages.join(' ');
}

const os = osRelease();
const debianLike = os.ID === 'debian' || os.ID === 'ubuntu' || /debian|ubuntu/.test(os.ID_LIKE ?? '');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const verbose = process.argv.includes('--verbose');

function ensureAdapter() {
  const found = adapterDescription();
  if (found !== null) {
    if (verbose) console.log(`WebGPU adapter: ${found}`);
    return;
  }
  const advice =
    'No WebGPU adapter was found. Install a Vulkan driver: on Debian/Ubuntu, `libvulkan1 mesa-vulkan-drivers` ' +
    '(Mesa >= 23; on Debian bookworm take both from bookworm-backports: `apt-get install -t bookworm-backports ' +
    "libvulkan1 mesa-vulkan-drivers`), or your GPU vendor's Vulkan driver; on macOS Metal and on Windows D3D12 " +
    'are used directly and need no install.';
  if (!debianLike || !isRoot) {
    console.error(`ensure-adapter: ${advice}`);
    if (debianLike && !isRoot)
      console.error('ensure-adapter: run the same command as root, or install the packages above with sudo.');
    process.exit(1);
  }
  let installed;
  try {
    installed = installLavapipe(os);
  } catch (e) {
    const { message } = /** @type {Error} */ (e);
    console.error(`ensure-adapter: installing Mesa lavapipe failed (${message}; log: ${INSTALL_LOG}). ${advice}`);
    process.exit(1);
  }
  const after = adapterDescription();
  if (after === null) {
    console.error(`ensure-adapter: installed ${installed}, but Dawn still finds no adapter. ${advice}`);
    process.exit(1);
  }
  console.error(
    `ensure-adapter: installed ${installed} (Mesa lavapipe; log: ${INSTALL_LOG}); WebGPU adapter: ${after}`,
  );
}

// Without SwiftShader the tests still run; its configuration then fails, saying what is missing.
function ensureSwiftShader() {
  if (seesSwiftShader()) return;
  const advice =
    "the SwiftShader test configuration needs Debian's `chromium` package (apt-get install chromium), " +
    `whose ${CHROMIUM_SWIFTSHADER} the engine registers, or SwiftShader's ICD file in VK_ADD_DRIVER_FILES`;
  if (!debianLike || !isRoot) {
    console.error(`ensure-adapter: ${advice}`);
    return;
  }
  try {
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium']);
  } catch (e) {
    const { message } = /** @type {Error} */ (e);
    console.error(`ensure-adapter: installing chromium failed (${message}; log: ${INSTALL_LOG}); ${advice}`);
    return;
  }
  console.error(
    `ensure-adapter: installed chromium (for its SwiftShader, a second adapter for the tests; log: ${INSTALL_LOG})`,
  );
  if (!seesSwiftShader())
    console.error(`ensure-adapter: chromium is installed but Dawn does not see SwiftShader; ${advice}`);
}

ensureAdapter();
if (process.argv.includes('--for-tests')) ensureSwiftShader();
